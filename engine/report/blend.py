"""Runs made from other runs' predictions: rank-gauss blends and neutralized predictions.

Both write what ``nx train`` writes for a run (``predictions/<name>.parquet`` with
id, era, target, prediction and ``results/<name>.json`` with corr, BMC and BMC over
the last 200 eras), so ``nx show`` and ``nx report`` rank them with the rest.

Rank-gauss, per era (the reference framework's ``rank_gauss``), over the non-NaN
values x of the era: ``g = ndtri((average rank - 0.5) / n)``, then ``g / std(g)``
(ddof 0) when that std is finite and non-zero; NaN stays NaN. A blend rank-gausses
each source per era, sums them with weights normalized to sum 1 (a row with a NaN
source is NaN; rows with equal inputs get equal sums, a tie, where the reference's
matrix product can round them apart), and rank-gausses the sum per era again. Ranking and the inverse
normal CDF are nx's numba kernels (:func:`nx.engine.metrics.gaussianize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import NxError, ReportError
from nx.engine.paths import DEFAULT_DATA_DIR, DEFAULT_DATA_VERSION, atomic_output
from nx.engine.progress import NO_PROGRESS, Progress

OUTPUT_COLUMNS = ("id", "era", "target", "prediction")


def rank_gauss(values: Any, eras: Any) -> np.ndarray:
    """Per era: ndtri(tie_kept_rank(x)) scaled to unit std (ddof 0); 1-D or (rows, cols)."""
    from nx.engine.metrics import EraLayout, gaussianize

    x = np.asarray(values, dtype=np.float64)
    matrix = x[:, None] if x.ndim == 1 else x
    layout = eras if isinstance(eras, EraLayout) else EraLayout(eras)
    gauss = layout.take(gaussianize(matrix, layout))
    starts, sizes = layout.offsets[:-1], np.diff(layout.offsets)
    present = ~np.isnan(gauss)
    counts = np.add.reduceat(present.astype(np.int64), starts, axis=0)
    filled = np.where(present, gauss, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(filled, starts, axis=0) / counts
        deviation = np.where(present, gauss - np.repeat(mean, sizes, axis=0), 0.0)
        std = np.sqrt(np.add.reduceat(deviation**2, starts, axis=0) / counts)
    scale = np.where(np.isfinite(std) & (std != 0), std, 1.0)
    out = gauss / np.repeat(scale, sizes, axis=0)
    if layout.order is not None:
        restored = np.empty_like(out)
        restored[layout.order] = out
        out = restored
    return out[:, 0] if x.ndim == 1 else out


def normalized_weights(weights: Sequence[float], n_sources: int) -> np.ndarray:
    weight = np.asarray(list(weights), dtype=np.float64)
    if len(weight) != n_sources:
        raise ReportError(
            f"{n_sources} predictions files but {len(weight)} weights; give one weight per file"
        )
    if not np.isfinite(weight).all():
        raise ReportError("blend weights must be finite numbers")
    if np.isclose(weight.sum(), 0.0):
        raise ReportError("blend weights sum to 0; give weights with a non-zero sum")
    return weight / weight.sum()


def blend_rank_gauss(predictions: Any, weights: Sequence[float], eras: Any) -> np.ndarray:
    """Rank-gauss each column of ``predictions`` (rows, sources) per era, weighted sum
    (weights normalized to sum 1), rank-gauss per era again."""
    from nx.engine.metrics import EraLayout

    matrix = np.asarray(predictions, dtype=np.float64)
    weight = normalized_weights(weights, matrix.shape[1])
    layout = eras if isinstance(eras, EraLayout) else EraLayout(eras)
    ranked = rank_gauss(matrix, layout)
    # column by column, the same operations for every row: rows with equal inputs get
    # equal sums, so their tie is kept (a BLAS matrix product may round them apart)
    blended = np.zeros(len(ranked))
    for j, w in enumerate(weight):
        blended += w * ranked[:, j]
    return rank_gauss(blended, layout)


def _read_source(path: Path, index: int, pred_col: str) -> pl.DataFrame:
    from nx.engine.metrics.io import scan_table

    try:
        lazy = scan_table(path, "predictions")
    except NxError as error:
        raise ReportError(str(error)) from None
    columns = lazy.collect_schema().names()
    needed = ["id", pred_col] + (["era", "target"] if index == 0 else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ReportError(
            f"predictions file {path} lacks {', '.join(missing)}; blend files written by "
            "`nx train` (id, era, target, prediction)"
        )
    frame = lazy.select(needed).collect()
    if frame["id"].n_unique() != frame.height:
        raise ReportError(f"predictions file {path} has duplicate ids; keep one row per id")
    return frame.rename({pred_col: f"__source_{index}"})


def _check_new(output_dir: Path, name: str, overwrite: bool) -> tuple[Path, Path]:
    predictions = Path(output_dir) / "predictions" / f"{name}.parquet"
    results = Path(output_dir) / "results" / f"{name}.json"
    if not overwrite:
        for path in (predictions, results):
            if path.exists():
                raise ReportError(
                    f"{path} exists; choose another --name or pass --overwrite to replace it"
                )
    return predictions, results


def _score_and_write(
    frame: pl.DataFrame,
    benchmark_values: np.ndarray | None,
    model: dict[str, Any],
    paths: tuple[Path, Path],
    output_dir: Path,
    data_version: str,
    benchmark: Any,
    extra_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score ``frame`` (id, era, target, prediction), then write predictions and results."""
    from nx.engine import metrics
    from nx.engine.train.results import write_json

    scored = frame.select("era", "target", "prediction")
    bench_col = None
    if benchmark_values is not None:
        scored = scored.with_columns(pl.Series("__benchmark__", benchmark_values))
        bench_col = "__benchmark__"
    try:
        _, summary = metrics.score(scored, ["prediction"], benchmark_col=bench_col)
    except NxError as error:
        raise ReportError(f"scoring the new predictions: {error}") from None
    predictions_path, results_path = paths
    with atomic_output(predictions_path) as tmp:
        frame.select(OUTPUT_COLUMNS).write_parquet(tmp)
    document = {
        "model": model,
        "data": {
            "target": "target",
            "data_version": data_version,
            "oof_rows": frame.height,
            "oof_eras": frame["era"].n_unique(),
            **(extra_data or {}),
        },
        "benchmark": {
            "model": benchmark.column if benchmark else None,
            "file": str(benchmark.path) if benchmark else None,
        },
        "output": {
            "output_dir": str(output_dir),
            "predictions_file": str(predictions_path.relative_to(output_dir)),
            "results_file": str(results_path.relative_to(output_dir)),
        },
        "metrics": summary["prediction"],
    }
    write_json(results_path, document)
    return document


def blend_predictions(
    sources: Sequence[Path],
    weights: Sequence[float],
    output_dir: Path,
    name: str,
    pred_col: str = "prediction",
    data_dir: Path = DEFAULT_DATA_DIR,
    data_version: str = DEFAULT_DATA_VERSION,
    benchmark_data: Path | None = None,
    benchmark_model: str | None = None,
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Blend predictions files (inner join on id; era and target of the first file),
    write ``predictions/<name>.parquet`` and ``results/<name>.json`` under ``output_dir``;
    returns the results document with ``paths``."""
    from nx.engine.metrics.io import as_scored
    from nx.engine.report.curves import _benchmark_values, resolve_benchmark

    if len(sources) < 1:
        raise ReportError("nothing to blend; give at least one predictions file")
    normalized_weights(weights, len(sources))  # checked before any reading
    paths = _check_new(output_dir, name, overwrite)
    with progress.task("Blending", total=len(sources) + 1) as task:
        merged = _read_source(Path(sources[0]), 0, pred_col)
        task.advance()
        for i, path in enumerate(sources[1:], start=1):
            merged = merged.join(
                _read_source(Path(path), i, pred_col), on="id", how="inner", maintain_order="left"
            )
            task.advance()
        if merged.height == 0:
            raise ReportError("the predictions files share no id; blend runs of the same data")
        merged = merged.with_columns(pl.col("era").cast(pl.String))
        columns = [f"__source_{i}" for i in range(len(sources))]
        blended = blend_rank_gauss(
            merged.select(columns).cast(pl.Float64).to_numpy(), weights, merged["era"]
        )
        frame = merged.select(
            "id", "era", as_scored("target", merged.schema["target"])
        ).with_columns(pl.Series("prediction", blended))
        benchmark = resolve_benchmark([], benchmark_data, benchmark_model, data_dir, data_version)
        if benchmark is None:
            progress.warn("no BMC: no benchmark models file (pass --benchmark-data or --data-dir)")
        values = _benchmark_values(benchmark, frame["id"]) if benchmark else None
        model = {
            "type": "RankGaussBlend",
            "params": {"weights": list(map(float, weights)), "sources": [str(s) for s in sources]},
        }
        document = _score_and_write(
            frame, values, model, paths, Path(output_dir), data_version, benchmark
        )
        task.advance()
    return {**document, "paths": {"predictions": str(paths[0]), "results": str(paths[1])}}


def neutralize_predictions(
    source: Path,
    feature_set: str,
    proportion: float = 1.0,
    output_dir: Path | None = None,
    name: str | None = None,
    pred_col: str = "prediction",
    data: Path | None = None,
    data_dir: Path = DEFAULT_DATA_DIR,
    data_version: str = DEFAULT_DATA_VERSION,
    benchmark_data: Path | None = None,
    benchmark_model: str | None = None,
    overwrite: bool = False,
    progress: Progress = NO_PROGRESS,
) -> dict[str, Any]:
    """Neutralize a predictions file per era against a feature set (numerai-tools'
    ``neutralize``: ``p - proportion [X, 1] lstsq([X, 1], p)``), write it as a run and
    score it. ``output_dir`` defaults to the experiment dir holding ``source`` (its
    ``predictions/`` parent), ``name`` to ``<stem>_neutral_<set>_<proportion>``."""
    from nx.engine import metrics
    from nx.engine.metrics.io import ScoreInputs, as_scored, load_score_frame
    from nx.engine.report.curves import Benchmark, resolve_benchmark

    source = Path(source)
    if not 0.0 <= proportion <= 1.0:
        raise ReportError(f"--proportion must be in [0, 1], got {proportion}")
    if output_dir is None:
        parent = source.resolve().parent
        output_dir = parent.parent if parent.name == "predictions" else parent
    output_dir = Path(output_dir)
    name = name or f"{source.stem}_neutral_{feature_set}_{round(proportion * 100):03d}"
    paths = _check_new(output_dir, name, overwrite)
    benchmark = resolve_benchmark([], benchmark_data, benchmark_model, data_dir, data_version)
    inputs = ScoreInputs(
        predictions=source,
        pred_cols=[pred_col],
        data=data,
        data_dir=data_dir,
        data_version=data_version,
        benchmark_data=benchmark.path if benchmark else None,
        benchmark_model=benchmark.column if benchmark else None,
        features=feature_set,
        keep_ids=True,
    )
    try:
        scored = load_score_frame(inputs, progress)
    except NxError as error:
        raise ReportError(str(error)) from None
    frame = scored.frame
    if frame[pred_col].null_count() or frame[pred_col].cast(pl.Float64).is_nan().any():
        raise ReportError(f"{source} has missing predictions; neutralize complete predictions")
    features = frame.select(scored.feature_cols).to_numpy()
    with progress.task("Neutralizing per era", total=None):
        try:
            neutral = metrics.neutralize(
                frame[pred_col].cast(pl.Float64).to_numpy(), features, proportion, frame["era"]
            )
        except NxError as error:
            raise ReportError(str(error)) from None
    out = pl.DataFrame(
        {
            "id": frame["id"],
            "era": frame["era"].cast(pl.String),
            "target": frame.select(as_scored("target", frame.schema["target"])).to_series(),
            "prediction": neutral,
        }
    )
    bench = (
        frame.select(as_scored(scored.benchmark_col, frame.schema[scored.benchmark_col]))
        .to_series()
        .to_numpy()
        if scored.benchmark_col
        else None
    )
    model = {
        "type": "Neutralized",
        "params": {"source": str(source), "feature_set": feature_set, "proportion": proportion},
    }
    used = Benchmark(benchmark.path, benchmark.column) if benchmark and bench is not None else None
    document = _score_and_write(
        out, bench, model, paths, output_dir, data_version, used, {"feature_set": feature_set}
    )
    return {**document, "paths": {"predictions": str(paths[0]), "results": str(paths[1])}}
