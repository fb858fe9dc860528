"""``nx predict``: predictions in Numerai's submission format (``id,prediction``).

From model folders the predictions are nx's own (in-process, the same blend and
ranking as an exported pickle); from a pickle they come from the pickle itself, run
in its runtime venv era by era.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nx.engine.errors import DataError, ExportError
from nx.engine.export.build import read_sidecar
from nx.engine.export.bundle import (
    neutralizer_features,
    nx_predictions,
    parse_weights,
    read_model_dir,
)
from nx.engine.export.runtimes import DEFAULT_RUNTIME, check_runtime_name
from nx.engine.export.worker import run_worker
from nx.engine.paths import DEFAULT_DATA_DIR, DEFAULT_DATA_VERSION, atomic_output, version_dir


@dataclass
class PredictResult:
    output: Path
    rows: int
    eras: int
    source: str  # "models" or "pickle"


def _default_data(data_dir: Path | str, version: str, name: str) -> Path:
    return version_dir(data_dir, version) / name


def _benchmark_for(data: Path) -> Path | None:
    """``live.parquet`` -> ``live_benchmark_models.parquet`` next to it, when there."""
    candidate = data.with_name(data.stem + "_benchmark_models.parquet")
    return candidate if candidate.is_file() else None


def predict_models(
    model_dirs: list[Path | str],
    output: Path | str,
    *,
    data: Path | str | None = None,
    benchmark_data: Path | str | None = None,
    weights: list[float] | str | None = None,
    neutralize_features: str | None = None,
    neutralize_proportion: float = 1.0,
    data_dir: Path | str = DEFAULT_DATA_DIR,
) -> PredictResult:
    """nx's predictions of saved models on ``data`` (default: live.parquet), as CSV."""
    models = [read_model_dir(path) for path in model_dirs]
    blend = parse_weights(weights, len(models))
    version = str(models[0].manifest.get("data_version") or DEFAULT_DATA_VERSION)
    data = Path(data) if data else _default_data(data_dir, version, "live.parquet")
    if not data.is_file():
        raise DataError(f"{data} not found; pass --data FILE or build the data with nx build-data")
    bench_path = Path(benchmark_data) if benchmark_data else _benchmark_for(data)
    neutralizers = (
        neutralizer_features(Path(data_dir), version, neutralize_features)
        if neutralize_features
        else []
    )
    era_col = str(models[0].manifest.get("era_col", "era"))
    frame = _read_rows(data, era_col)
    benchmarks = None
    if any(m.benchmarks for m in models):
        if bench_path is None or not bench_path.is_file():
            raise DataError(
                f"the model reads benchmark columns but there is no benchmark file for {data}; "
                "pass --benchmark-data FILE"
            )
        benchmarks = pl.read_parquet(bench_path)
    values = nx_predictions(
        models,
        blend,
        frame,
        benchmarks,
        neutralizers=neutralizers,
        proportion=neutralize_proportion,
        era_col=era_col,
    )
    out = pl.DataFrame({"id": frame["id"].cast(pl.String), "prediction": values})
    output = Path(output)
    with atomic_output(output) as tmp:
        out.write_csv(tmp)
    return PredictResult(output, out.height, frame[era_col].n_unique(), "models")


def _read_rows(path: Path, era_col: str) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as error:
        raise DataError(f"{path}: not a readable parquet file ({error})") from None
    if "id" not in frame.columns:
        raise DataError(f"{path}: no id column; pass a Numerai data file (live.parquet)")
    if era_col not in frame.columns:
        frame = frame.with_columns(pl.lit("live").alias(era_col))
    if frame["id"].n_unique() != frame.height:
        raise DataError(f"{path}: ids are not unique")
    return frame


def predict_pickle(
    pickle_path: Path | str,
    output: Path | str,
    *,
    data: Path | str | None = None,
    benchmark_data: Path | str | None = None,
    runtime: str | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
) -> PredictResult:
    """The pickle's own predictions on ``data`` (era by era), run in its runtime, as CSV."""
    pickle_path = Path(pickle_path)
    if not pickle_path.is_file():
        raise ExportError(f"{pickle_path} not found; make one with `nx export`")
    sidecar = read_sidecar(pickle_path) or {}
    runtime = check_runtime_name(runtime or sidecar.get("runtime") or DEFAULT_RUNTIME)
    version = str(sidecar.get("data_version") or DEFAULT_DATA_VERSION)
    data = Path(data) if data else _default_data(data_dir, version, "live.parquet")
    if not data.is_file():
        raise DataError(f"{data} not found; pass --data FILE or build the data with nx build-data")
    bench_path = Path(benchmark_data) if benchmark_data else _benchmark_for(data)
    output = Path(output)
    with atomic_output(output) as tmp:
        answer = run_worker(
            "predict",
            {
                "pickle": str(pickle_path.resolve()),
                "data": str(data.resolve()),
                "benchmarks": str(bench_path.resolve()) if bench_path else None,
                "output": str(tmp.resolve()),
            },
            runtime,
        )
        if not answer.get("ok"):
            raise ExportError(f"{pickle_path}: {answer.get('error')}")
    return PredictResult(output, int(answer["rows"]), int(answer["eras"]), "pickle")
