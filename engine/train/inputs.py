"""Reading one config's inputs: the feature set, the data file, benchmark and baseline joins.

Only the needed columns are read; features stay in their stored dtype (int8) in one
C-order matrix, filled a few columns at a time, so no step holds a second table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from nx.engine.data.cache import cached_feature_matrix
from nx.engine.eras import era_sort_key
from nx.engine.errors import DataError
from nx.engine.paths import version_dir
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.train.config import TrainConfig, resolve_data_path
from nx.engine.train.cv import folds_for
from nx.engine.train.models import MatrixSource

FEATURE_CHUNK_COLUMNS = 50


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
    path: Path,
    features: list[str],
    n_rows: int,
    progress: Progress = NO_PROGRESS,
    allocate=np.empty,
) -> np.ndarray:
    """The feature columns as one C-order matrix, filled a few columns at a time.

    Integer features (Numerai's 0..4 bins) stay int8; anything else becomes float32.
    Reading column chunks keeps the extra memory to one chunk, never a second table.
    ``allocate(shape, dtype)`` makes the matrix (the feature cache passes a mapped file).
    """
    if not features:
        return np.empty((n_rows, 0), dtype=np.int8)
    schema = pq.read_schema(path)
    integer = all(str(schema.field(name).type).startswith(("int", "uint")) for name in features)
    dtype = np.int8 if integer else np.float32
    matrix = allocate((n_rows, len(features)), dtype)
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
    matrix = cached_feature_matrix(
        data_dir,
        full_path,
        features,
        cfg.feature_set,
        lambda allocate: _read_feature_matrix(
            full_path, features, frame.height, progress, allocate
        ),
        progress.warn,
    )
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
