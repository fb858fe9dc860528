"""The training pipeline: data -> era CV -> out-of-fold predictions -> scores -> outputs.

One config (see :mod:`nx.engine.config`) produces, under its output dir:

- ``predictions/<name>.parquet``: id, era, target, prediction, cv_fold (OOF rows);
- ``results/<name>.json``: model, preprocessing, data, benchmark, output, metrics
  (corr, bmc, bmc_last_200_eras from :func:`nx.engine.metrics.score`), cv, training;
- ``configs/<name>.json``: the resolved config (every default filled in);
- with ``final_fit``: ``models/<name>/`` holding a model trained on every era and a
  ``manifest.json`` (ordered columns, target, transform, data version, nx version).

Memory: only the needed columns are read; features stay in their stored dtype
(int8) in one matrix, and each fold hands its rows to the model in float32
batches, so no fold copies the table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from nx.engine import __version__
from nx.engine.config import TrainConfig, resolve_data_path
from nx.engine.cv import Fold, era_folds, era_sort_key
from nx.engine.errors import ConfigError, DataError
from nx.engine.models import MatrixSource, ModelSpec, check_model_type
from nx.engine.paths import atomic_output, version_dir
from nx.engine.progress import NO_PROGRESS, Progress

FEATURE_CHUNK_COLUMNS = 50


# ---------------------------------------------------------------- data


@dataclass
class TrainingData:
    """Everything one config trains on, one entry per row of the data file."""

    ids: pl.Series
    eras: list[str]  # unique eras, sorted numerically
    era_codes: np.ndarray  # int32 index into ``eras`` per row
    target: np.ndarray  # float64
    source: MatrixSource  # model inputs
    benchmark: np.ndarray | None  # float64, the metrics benchmark (NaN where absent)
    transform_benchmark: np.ndarray | None  # float64, the column a target transform uses
    full_data_path: Path
    benchmark_data_path: Path | None
    feature_names: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.target)


def _feature_set(config: TrainConfig, data_dir: Path) -> list[str]:
    path = version_dir(data_dir, config.data.data_version) / "features.json"
    if not path.is_file():
        raise DataError(
            f"{path} not found; build the data first with `nx build-data --data-version "
            f"{config.data.data_version}` (or --synthetic) or pass --data-dir"
        )
    try:
        sets = json.loads(path.read_text(encoding="utf-8"))["feature_sets"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(
            f"{path}: not a Numerai features.json (no feature_sets); rebuild it"
        ) from None
    name = config.data.feature_set
    if name not in sets:
        raise config.error(
            "data.feature_set",
            f"unknown feature set {name!r}; available: {', '.join(sorted(sets))}",
        )
    return list(sets[name])


def _schema_names(path: Path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except Exception as error:
        raise DataError(f"{path}: not a readable parquet file ({error}); rebuild it") from None


def _read_feature_matrix(
    path: Path, features: list[str], n_rows: int, progress: Progress = NO_PROGRESS
) -> np.ndarray:
    """The feature columns as one C-order matrix, filled a few columns at a time.

    Integer features (Numerai's 0..4 bins) stay int8; anything else becomes float32.
    Reading column chunks keeps the extra memory to one chunk, never a second table.
    """
    if not features:
        return np.empty((n_rows, 0), dtype=np.int8)
    schema = pq.read_schema(path)
    integer = all(str(schema.field(name).type).startswith(("int", "uint")) for name in features)
    dtype = np.int8 if integer else np.float32
    matrix = np.empty((n_rows, len(features)), dtype=dtype)
    scan = pl.scan_parquet(path)
    with progress.task(f"Reading {len(features)} features", total=len(features)) as bar:
        for start in range(0, len(features), FEATURE_CHUNK_COLUMNS):
            names = features[start : start + FEATURE_CHUNK_COLUMNS]
            chunk = scan.select(names).collect()
            matrix[:, start : start + len(names)] = chunk.to_numpy().astype(dtype, copy=False)
            del chunk
            bar.advance(len(names))
    return matrix


def _join_by_id(
    ids: pl.DataFrame,
    other: pl.DataFrame,
    columns: list[str],
    *,
    id_col: str,
    era_col: str,
    what: str,
) -> pl.DataFrame:
    """``columns`` of ``other`` aligned to ``ids`` (left join on id), eras checked."""
    if other.height != other[id_col].n_unique():
        raise DataError(f"{what}: ids are not unique; rebuild it")
    joined = ids.join(
        other.rename({era_col: "__era_other"}) if era_col in other.columns else other,
        on=id_col,
        how="left",
        maintain_order="left",
    )
    if "__era_other" in joined.columns:
        bad = joined.filter(
            pl.col("__era_other").is_not_null() & (pl.col("__era_other") != pl.col(era_col))
        )
        if bad.height:
            example = bad.row(0, named=True)
            raise DataError(
                f"{what}: {bad.height} ids have another era than in the training data (e.g. "
                f"id {example[id_col]}: {example['__era_other']} vs {example[era_col]}); "
                "build both files from the same data version"
            )
    return joined.select(columns)


@dataclass(frozen=True)
class _Inputs:
    """The files one config reads, checked against its keys (schemas only, no data)."""

    features: list[str]
    full_path: Path
    bench_path: Path | None
    bench_columns: list[str]  # prediction columns of the benchmark file
    baseline_path: Path | None


def _resolve_inputs(config: TrainConfig, data_dir: Path) -> _Inputs:
    cfg = config.data
    vdir = version_dir(data_dir, cfg.data_version)
    features = _feature_set(config, data_dir)
    full_path = resolve_data_path(data_dir, cfg.full_data_path, vdir / "full.parquet")
    if not full_path.is_file():
        key = "data.full_data_path" if cfg.full_data_path else "data.data_version"
        raise DataError(
            f"{full_path} not found ({key}); build it with `nx build-data` or fix --data-dir"
        )
    names = _schema_names(full_path)
    if cfg.target_col not in names:
        targets = [n for n in names if n.startswith("target")]
        raise config.error(
            "data.target_col",
            f"{cfg.target_col!r} is not a column of {full_path}; available: "
            + ", ".join(targets[:12])
            + (" ..." if len(targets) > 12 else ""),
        )
    missing = [c for c in (cfg.id_col, cfg.era_col, *features) if c not in names]
    if missing:
        raise DataError(
            f"{full_path}: missing columns {missing[:5]} (feature set {cfg.feature_set!r}); "
            "rebuild the data or pick another data.feature_set"
        )

    bench_path: Path | None = resolve_data_path(
        data_dir, cfg.benchmark_data_path, vdir / "full_benchmark_models.parquet"
    )
    bench_columns: list[str] = []
    needs_bench = "benchmark_models" in config.model.x_groups or config.model.target_transform
    if bench_path.is_file():
        bench_names = _schema_names(bench_path)
        bench_columns = [c for c in bench_names if c not in (cfg.id_col, cfg.era_col)]
        if cfg.id_col not in bench_names:
            raise DataError(f"{bench_path}: no {cfg.id_col} column to join by; rebuild it")
        checks = [("data.benchmark_model", cfg.benchmark_model)]
        if config.transform_benchmark_col is not None:
            checks.append(("model.target_transform.benchmark_col", config.transform_benchmark_col))
        for key, column in checks:
            if column not in bench_columns:
                raise config.error(
                    key,
                    f"{column!r} is not in {bench_path}; available: " + ", ".join(bench_columns),
                )
    elif needs_bench:
        key = "data.benchmark_data_path"
        raise DataError(
            f"{bench_path} not found ({key}); build it with `nx build-data` or set {key}"
        )
    else:
        bench_path = None

    baseline_path = None
    if "baseline" in config.model.x_groups:
        baseline = config.model.baseline
        given = Path(baseline.predictions_path).expanduser()
        baseline_path = given if given.is_absolute() else Path(data_dir) / given
        if not baseline_path.is_file() and given.is_file():
            baseline_path = given  # relative to the working directory, as a fallback
        if not baseline_path.is_file():
            raise config.error(
                "model.baseline.predictions_path",
                f"{baseline_path} not found; point it at a predictions parquet (e.g. from nx train)",
            )
        baseline_names = _schema_names(baseline_path)
        if baseline.pred_col not in baseline_names:
            raise config.error(
                "model.baseline.pred_col",
                f"{baseline.pred_col!r} is not a column of {baseline_path}",
            )
        if cfg.id_col not in baseline_names:
            raise DataError(f"{baseline_path}: no {cfg.id_col} column to join the baseline by")
    return _Inputs(features, full_path, bench_path, bench_columns, baseline_path)


def check_inputs(config: TrainConfig, data_dir: Path | str) -> None:
    """Every check against the data that needs no feature values (files, columns, folds).

    Cheap (schemas and the era column), so a multi-config run can check every config
    before it trains the first one.
    """
    inputs = _resolve_inputs(config, Path(data_dir))
    if config.training.cv.enabled:
        era = config.data.era_col
        eras = pl.scan_parquet(inputs.full_path).select(pl.col(era).cast(pl.String).unique())
        folds_for(config, eras.collect()[era].to_list())


def load_training_data(
    config: TrainConfig, data_dir: Path | str, progress: Progress = NO_PROGRESS
) -> TrainingData:
    """Read what ``config`` needs from ``data_dir`` (projection; features kept int8)."""
    data_dir = Path(data_dir)
    cfg = config.data
    inputs = _resolve_inputs(config, data_dir)
    full_path = inputs.full_path

    # Small columns first: every check that can fail runs before the long feature read.
    frame = (
        pl.scan_parquet(full_path)
        .select(
            pl.col(cfg.id_col).cast(pl.String),
            pl.col(cfg.era_col).cast(pl.String),
            pl.col(cfg.target_col).cast(pl.Float64),
        )
        .collect()
    )
    if frame[cfg.id_col].n_unique() != frame.height:
        raise DataError(f"{full_path}: column {cfg.id_col} has duplicate ids; rebuild it")
    eras = sorted(frame[cfg.era_col].unique().to_list(), key=era_sort_key)
    if config.training.cv.enabled:
        folds_for(config, eras)
    era_index = pl.DataFrame({cfg.era_col: eras, "__code": np.arange(len(eras), dtype=np.int32)})
    era_codes = (
        frame.select(cfg.era_col)
        .join(era_index, on=cfg.era_col, how="left", maintain_order="left")["__code"]
        .to_numpy()
    )

    extra: dict[str, np.ndarray] = {}
    benchmark = transform_benchmark = None
    ids = frame.select(cfg.id_col, cfg.era_col)
    groups = config.model.x_groups
    if inputs.bench_path is not None:
        transform_col = config.transform_benchmark_col
        wanted = {cfg.benchmark_model, transform_col}
        if "benchmark_models" in groups:
            wanted.update(inputs.bench_columns)
        cols = [c for c in inputs.bench_columns if c in wanted]
        joined = _join_by_id(
            ids,
            _read_by_id(inputs.bench_path, cfg.id_col, cfg.era_col, cols),
            cols,
            id_col=cfg.id_col,
            era_col=cfg.era_col,
            what=str(inputs.bench_path),
        )
        benchmark = joined[cfg.benchmark_model].fill_null(np.nan).to_numpy()
        if transform_col is not None:
            transform_benchmark = joined[transform_col].fill_null(np.nan).to_numpy()
        if "benchmark_models" in groups:
            for c in inputs.bench_columns:
                extra[c] = joined[c].fill_null(np.nan).to_numpy().astype(np.float32)
    if inputs.baseline_path is not None:
        baseline = config.model.baseline
        frame_b = _read_by_id(inputs.baseline_path, cfg.id_col, cfg.era_col, [baseline.pred_col])
        joined = _join_by_id(
            ids,
            frame_b,
            [baseline.pred_col],
            id_col=cfg.id_col,
            era_col=cfg.era_col,
            what=str(inputs.baseline_path),
        )
        extra[baseline.name] = (
            joined[baseline.pred_col].fill_null(np.nan).to_numpy().astype(np.float32)
        )
    if "era" in groups:
        numeric = [era_sort_key(e)[1] if era_sort_key(e)[0] == 0 else i for i, e in enumerate(eras)]
        extra[cfg.era_col] = np.asarray(numeric, dtype=np.float32)[era_codes]

    features = inputs.features if "features" in groups else []
    matrix = _read_feature_matrix(full_path, features, frame.height, progress)
    nan_mask = None
    if config.preprocessing.nan_missing_all_twos and features:
        nan_mask = _all_missing_mask(
            matrix, era_codes, len(eras), config.preprocessing.missing_value
        )
    source = MatrixSource(
        features=matrix,
        feature_names=features,
        extra=np.column_stack(list(extra.values())) if extra else None,
        extra_names=list(extra),
        era_codes=era_codes,
        nan_mask=nan_mask,
    )
    return TrainingData(
        ids=frame[cfg.id_col],
        eras=eras,
        era_codes=era_codes,
        target=frame[cfg.target_col].to_numpy(),
        source=source,
        benchmark=benchmark,
        transform_benchmark=transform_benchmark,
        full_data_path=full_path,
        benchmark_data_path=inputs.bench_path,
        feature_names=features,
    )


def _read_by_id(path: Path, id_col: str, era_col: str, columns: list[str]) -> pl.DataFrame:
    """``id`` (and ``era`` when the file has it) plus ``columns`` as float64."""
    names = _schema_names(path)
    return (
        pl.scan_parquet(path)
        .select(
            pl.col(id_col).cast(pl.String),
            *([pl.col(era_col).cast(pl.String)] if era_col in names else []),
            *[pl.col(c).cast(pl.Float64) for c in columns],
        )
        .collect()
    )


def _all_missing_mask(
    matrix: np.ndarray, era_codes: np.ndarray, n_eras: int, missing_value: float
) -> np.ndarray:
    """(n_eras x n_features): true where every value of the feature in the era is missing."""
    mask = np.zeros((n_eras, matrix.shape[1]), dtype=bool)
    if matrix.dtype == np.int8 and float(missing_value) != int(missing_value):
        return mask
    value = matrix.dtype.type(missing_value)
    order = np.argsort(era_codes, kind="stable")
    bounds = np.searchsorted(era_codes[order], np.arange(n_eras + 1))
    for era in range(n_eras):
        rows = order[bounds[era] : bounds[era + 1]]
        if len(rows):
            mask[era] = (matrix[rows] == value).all(axis=0)
    return mask


# ---------------------------------------------------------------- target transforms


def residual_to_benchmark(
    y: np.ndarray,
    x: np.ndarray,
    groups: np.ndarray | None,
    *,
    fit_intercept: bool = True,
    proportion: float = 1.0,
) -> np.ndarray:
    """Per group (era), over finite rows: ``yc - alpha * xc`` with ``alpha = xc.yc / xc.xc``.

    ``yc``/``xc`` are centred when ``fit_intercept``; alpha is 0 when ``xc.xc`` is 0.
    Rows where y or x is not finite get NaN. With ``proportion < 1`` the result is
    ``(1 - p) * y + p * residual``.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    codes = np.zeros(len(y), dtype=np.int64) if groups is None else np.asarray(groups, np.int64)
    ok = np.isfinite(y) & np.isfinite(x)
    out = np.full(len(y), np.nan)
    if not ok.any():
        return out
    g, yy, xx = codes[ok], y[ok], x[ok]
    n_groups = int(g.max()) + 1
    if fit_intercept:
        counts = np.bincount(g, minlength=n_groups).astype(np.float64)
        safe = np.maximum(counts, 1)
        yy = yy - (np.bincount(g, yy, n_groups) / safe)[g]
        xx = xx - (np.bincount(g, xx, n_groups) / safe)[g]
    sxx = np.bincount(g, xx * xx, n_groups)
    sxy = np.bincount(g, xx * yy, n_groups)
    alpha = np.divide(sxy, sxx, out=np.zeros(n_groups), where=sxx != 0)
    out[ok] = yy - alpha[g] * xx
    if proportion != 1.0:
        out = (1.0 - proportion) * y + proportion * out
    return out


def subtract_benchmark(
    y: np.ndarray, x: np.ndarray, groups: np.ndarray, *, scale: float = 0.07
) -> np.ndarray:
    """``y - scale * z`` with z the per-group z-score of x (ddof 0; z = 0 where std is 0)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    codes = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(x)
    z = np.full(len(x), np.nan)
    if ok.any():
        g, xx = codes[ok], x[ok]
        n_groups = int(g.max()) + 1
        counts = np.maximum(np.bincount(g, minlength=n_groups), 1).astype(np.float64)
        mean = np.bincount(g, xx, n_groups) / counts
        var = np.bincount(g, xx * xx, n_groups) / counts - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        diff = xx - mean[g]
        z[ok] = np.divide(diff, std[g], out=np.zeros_like(diff), where=std[g] != 0)
    return y - float(scale) * z


def transformed_target(config: TrainConfig, data: TrainingData, rows: np.ndarray) -> np.ndarray:
    """The training labels of ``rows`` after ``model.target_transform`` (if any)."""
    y = data.target[rows]
    transform = config.model.target_transform
    if transform is None:
        return y
    x = data.transform_benchmark[rows]
    groups = data.era_codes[rows]
    if transform.type == "residual_to_benchmark":
        return residual_to_benchmark(
            y,
            x,
            groups if transform.per_era else None,
            fit_intercept=transform.fit_intercept,
            proportion=transform.proportion,
        )
    return subtract_benchmark(y, x, groups, scale=transform.scale)


# ---------------------------------------------------------------- training


@dataclass
class TrainResult:
    """What one config produced: output paths, metrics and fold facts."""

    name: str
    output_dir: Path
    predictions_path: Path | None  # None when CV is off (final fit only)
    results_path: Path
    config_path: Path
    model_dir: Path | None
    metrics: dict[str, Any]
    results: dict[str, Any]


def _rows_of(data: TrainingData, eras: list[str]) -> np.ndarray:
    wanted = np.zeros(len(data.eras), dtype=bool)
    index = {era: i for i, era in enumerate(data.eras)}
    wanted[[index[e] for e in eras]] = True
    return np.flatnonzero(wanted[data.era_codes])


def _sampled(config: TrainConfig, rows: np.ndarray) -> np.ndarray:
    """Per-fold row subsample as pandas ``sample(n, random_state=seed)`` draws it."""
    limit = config.training.max_train_samples
    if limit is None or len(rows) <= limit:
        return rows
    pick = np.random.RandomState(config.training.sample_seed).choice(
        len(rows), size=limit, replace=False
    )
    return rows[pick]


def _fit(spec: ModelSpec, config: TrainConfig, data: TrainingData, rows: np.ndarray):
    rows = _sampled(config, rows)
    y = transformed_target(config, data, rows)
    finite = np.isfinite(y)
    if not finite.all():  # e.g. eras without benchmark under a target transform
        rows, y = rows[finite], y[finite]
    if len(rows) == 0:
        raise DataError(
            f"{config.source}: no training rows with a finite target (target transform "
            "needs benchmark values); check data.benchmark_data_path"
        )
    return spec.fit(data.source, rows, y), len(rows)


def folds_for(config: TrainConfig, eras: list[str]) -> list[Fold]:
    cv = config.training.cv
    try:
        return era_folds(eras, cv.n_splits, config.cv_embargo, cv.mode, cv.min_train_size)
    except ConfigError as error:
        raise ConfigError(f"{config.source}: {error}") from None


def check_config(config: TrainConfig) -> None:
    """Checks that need no data (model type importable, ridge params)."""
    check_model_type(config.model.type, config.model.params, config.source)


def oof_predictions(
    config: TrainConfig,
    data: TrainingData,
    folds: list[Fold],
    spec: ModelSpec,
    on_fold=lambda: None,
) -> tuple[pl.DataFrame, np.ndarray, list[dict[str, Any]]]:
    """Train one model per fold and predict its validation eras.

    Returns the OOF frame (id, era, target, prediction, cv_fold; data order), the
    data rows it covers, and per-fold facts (era and row counts).
    """
    prediction = np.full(data.n_rows, np.nan)
    cv_fold = np.full(data.n_rows, -1, dtype=np.int32)
    facts = []
    for fold in folds:
        train_rows = _rows_of(data, fold.train_eras)
        val_rows = _rows_of(data, fold.val_eras)
        model, used = _fit(spec, config, data, train_rows)
        if (cv_fold[val_rows] >= 0).any():  # cannot happen with disjoint blocks
            raise DataError(f"{config.source}: fold {fold.index} predicts rows twice")
        prediction[val_rows] = model.predict_rows(data.source, val_rows)
        cv_fold[val_rows] = fold.index
        facts.append(
            {
                "fold": fold.index,
                "train_eras": len(fold.train_eras),
                "val_eras": len(fold.val_eras),
                "train_rows": int(len(train_rows)),
                "train_rows_used": int(used),
                "val_rows": int(len(val_rows)),
                "train_era_range": [fold.train_eras[0], fold.train_eras[-1]],
                "val_era_range": [fold.val_eras[0], fold.val_eras[-1]],
            }
        )
        del model
        on_fold()
    oof = np.flatnonzero(cv_fold >= 0)
    cfg = config.data
    frame = pl.DataFrame(
        {
            cfg.id_col: data.ids.gather(oof),
            cfg.era_col: pl.Series([data.eras[c] for c in data.era_codes[oof]], dtype=pl.String),
            cfg.target_col: data.target[oof],
            "prediction": prediction[oof],
            "cv_fold": cv_fold[oof],
        }
    )
    return frame, oof, facts


def train_config(
    config: TrainConfig,
    *,
    data_dir: Path | str,
    output_dir: Path | str | None = None,
    final: bool = False,
    progress: Progress = NO_PROGRESS,
) -> TrainResult:
    """Run one config end to end and write its outputs; returns where they are."""
    check_config(config)
    started = time.perf_counter()
    out = Path(output_dir or config.output.output_dir or "experiments")
    data = load_training_data(config, data_dir, progress)
    final = final or config.training.final_fit
    cv_on = config.training.cv.enabled
    folds = folds_for(config, data.eras) if cv_on else []
    if cv_on and not folds:
        raise config.error(
            "training.cv", "every fold has an empty train set; lower the embargo or n_splits"
        )

    spec = ModelSpec(config.model.type, dict(config.model.params), progress, str(config.source))
    with progress.task(f"Training {config.name}", total=len(folds) + int(final)) as bar:
        predictions, oof, fold_facts = oof_predictions(config, data, folds, spec, bar.advance)
        model_dir = None
        if final:
            model, _ = _fit(spec, config, data, np.arange(data.n_rows))
            model_dir = _save_artifact(model, config, data, out, spec)
            bar.advance()

    names = _output_paths(config, out)
    metrics: dict[str, Any] = {}
    if cv_on:
        from nx.engine.metrics import score

        bench = data.benchmark[oof] if data.benchmark is not None else None
        metrics = oof_metrics(predictions, config, bench, score)
        with atomic_output(names["predictions"]) as tmp:
            predictions.write_parquet(tmp)

    results = _results_document(
        config, data, spec, predictions, folds, fold_facts, metrics, names, out, model_dir
    )
    results["training"]["seconds"] = round(time.perf_counter() - started, 3)
    _write_json(names["config"], config.resolved())
    _write_json(names["results"], results)
    return TrainResult(
        name=config.name,
        output_dir=out,
        predictions_path=names["predictions"] if cv_on else None,
        results_path=names["results"],
        config_path=names["config"],
        model_dir=model_dir,
        metrics=metrics,
        results=results,
    )


def oof_metrics(
    predictions: pl.DataFrame, config: TrainConfig, benchmark: np.ndarray | None, score
) -> dict[str, Any]:
    """corr over every OOF era; bmc and bmc_last_200_eras over rows that have the benchmark."""
    cfg = config.data
    frame = predictions.select(cfg.era_col, cfg.target_col, "prediction")
    _, summary = score(frame, ["prediction"], target_col=cfg.target_col, era_col=cfg.era_col)
    metrics = {"corr": summary["prediction"]["corr"]}
    if benchmark is not None:
        with_bench = frame.with_columns(pl.Series(cfg.benchmark_model, benchmark)).filter(
            pl.col(cfg.benchmark_model).is_not_nan()
        )
        if with_bench.height:
            _, summary = score(
                with_bench,
                ["prediction"],
                target_col=cfg.target_col,
                era_col=cfg.era_col,
                benchmark_col=cfg.benchmark_model,
            )
            for key in ("bmc", "bmc_last_200_eras"):
                if key in summary["prediction"]:
                    metrics[key] = summary["prediction"][key]
    return metrics


def _output_paths(config: TrainConfig, out: Path) -> dict[str, Path]:
    return {
        "predictions": out / "predictions" / f"{config.predictions_name}.parquet",
        "results": out / "results" / f"{config.name}.json",
        "config": out / "configs" / f"{config.name}.json",
    }


def _write_json(path: Path, document: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(_json_ready(document), indent=2, sort_keys=True) + "\n")


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _relative(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _results_document(
    config: TrainConfig,
    data: TrainingData,
    spec: ModelSpec,
    predictions: pl.DataFrame,
    folds: list[Fold],
    fold_facts: list[dict[str, Any]],
    metrics: dict[str, Any],
    names: dict[str, Path],
    out: Path,
    model_dir: Path | None,
) -> dict[str, Any]:
    cv = config.training.cv
    cv_settings = {**cv.model_dump(), "embargo": config.cv_embargo}
    transform = config.model.target_transform
    return {
        "model": {
            "type": config.model.type,
            "params": spec.params,
            "x_groups": config.model.x_groups,
        },
        "preprocessing": config.preprocessing.model_dump(),
        "data": {
            "data_version": config.data.data_version,
            "feature_set": config.data.feature_set,
            "n_features": len(data.feature_names),
            "target": config.data.target_col,
            "full_data_path": str(data.full_data_path),
            "full_rows": data.n_rows,
            "full_eras": len(data.eras),
            "oof_rows": predictions.height,
            "oof_eras": predictions[config.data.era_col].n_unique(),
            "embargo_eras": config.data.embargo_eras,
        },
        "benchmark": {
            "model": config.data.benchmark_model,
            "file": str(data.benchmark_data_path) if data.benchmark_data_path else None,
        },
        "output": {
            "output_dir": str(out),
            "predictions_file": _relative(names["predictions"], out)
            if config.training.cv.enabled
            else None,
            "results_file": _relative(names["results"], out),
            "config_file": _relative(names["config"], out),
            "model_dir": _relative(model_dir, out),
        },
        "metrics": metrics,
        "cv": {
            **cv_settings,
            "skipped_folds": sorted(set(range(cv.n_splits)) - {f.index for f in folds})
            if cv.enabled
            else [],
            "folds": fold_facts,
        },
        "training": {
            "target_transform": transform.model_dump() if transform else None,
            "data_sampling": {
                "max_train_samples": config.training.max_train_samples,
                "sample_seed": config.training.sample_seed
                if config.training.max_train_samples
                else None,
            },
            "cv": cv_settings,
            "final_fit": model_dir is not None,
            "nx_version": __version__,
        },
    }


def _save_artifact(
    model, config: TrainConfig, data: TrainingData, out: Path, spec: ModelSpec
) -> Path:
    """Write ``models/<name>/`` atomically: the model file plus ``manifest.json``."""
    target = out / "models" / config.name
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{config.name}.", dir=target.parent))
    try:
        model_file = model.save(staging)
        transform = config.model.target_transform
        manifest = {
            "format": "nx-model/1",
            "nx_version": __version__,
            "name": config.name,
            "model_type": config.model.type,
            "model_kind": model.kind,
            "model_file": model_file,
            "params": spec.params,
            "features": data.source.feature_names,
            "columns": data.source.columns,
            "x_groups": config.model.x_groups,
            "target": config.data.target_col,
            "target_transform": transform.model_dump() if transform else None,
            "transform_benchmark_col": config.transform_benchmark_col,
            "preprocessing": config.preprocessing.model_dump(),
            "data_version": config.data.data_version,
            "feature_set": config.data.feature_set,
            "benchmark_model": config.data.benchmark_model,
            "baseline": config.model.baseline.model_dump() if config.model.baseline else None,
            "trained_rows": data.n_rows,
            "trained_eras": [data.eras[0], data.eras[-1]],
        }
        (staging / "manifest.json").write_text(
            json.dumps(_json_ready(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{config.name}.old.", dir=target.parent))
            os.replace(target, old / "model")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
