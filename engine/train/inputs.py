"""Reading one config's inputs: the feature set, the data file, benchmark and baseline joins.

Only the needed columns are read; features stay in their stored dtype (int8) in one
C-order matrix, filled a few columns at a time, so no step holds a second table.
The groups of ``model.x_groups`` (normalized as the reference does) are loaded and
made available to target transforms and custom models; ``model.input_groups``
decide which of them built-in models train on. Benchmark and baseline files are
joined by their ``id`` column, where both layouts keep it (a plain column, or the
pandas index that Numerai's files and the reference's builder write).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from nx.engine.data.cache import cached_feature_matrix, release_pages
from nx.engine.eras import era_sort_key
from nx.engine.errors import DataError
from nx.engine.paths import version_dir
from nx.engine.progress import NO_PROGRESS, Progress
from nx.engine.train.config import TrainConfig, resolve_data_path
from nx.engine.train.cv import folds_for
from nx.engine.train.models import MatrixSource, is_builtin

FEATURE_CHUNK_COLUMNS = 50
WRITE_ROWS = 65_536  # rows of the matrix written between page releases


@dataclass
class TrainingData:
    """Everything one config trains on, one entry per row of the data file."""

    ids: pl.Series
    eras: list[str]  # unique eras, sorted numerically
    era_codes: np.ndarray  # int32 index into ``eras`` per row
    target: np.ndarray  # float64
    source: MatrixSource  # what built-in models train on (model.input_groups)
    benchmark: np.ndarray | None  # the metrics benchmark as stored (float32/64; NaN where absent)
    transform_benchmark: np.ndarray | None  # float64, the column a target transform uses
    full_data_path: Path
    benchmark_data_path: Path | None
    feature_names: list[str] = field(default_factory=list)
    stored_target: pl.Series | None = None  # the target in its stored dtype (outputs)
    benchmark_col: str | None = None  # data.benchmark_model resolved to its column
    # The reference's X columns (normalized model.x_groups, in order) and the
    # non-feature ones among them in their stored dtype (benchmark, baseline columns).
    x_columns: list[str] = field(default_factory=list)
    available: dict[str, np.ndarray] = field(default_factory=dict)
    feature_matrix: np.ndarray | None = None  # the feature set, stored dtype
    nan_mask: np.ndarray | None = None  # (n_eras x n_features), nan_missing_all_twos
    id_col: str = "id"
    era_col: str = "era"
    target_col: str = "target"

    @property
    def n_rows(self) -> int:
        return len(self.target)

    def features_of(self, rows: np.ndarray) -> np.ndarray:
        """The feature-set columns of ``rows`` as the reference holds them.

        Stored dtype (int8), or float32 with NaN where ``nan_missing_all_twos`` applies
        (the reference converts every feature to float32 when that option is on).
        """
        matrix = self.feature_matrix[rows]
        if self.nan_mask is None:
            return matrix
        block = matrix.astype(np.float32)
        block[self.nan_mask[self.era_codes[rows]]] = np.nan
        return block

    def x_frame(self, rows: np.ndarray):
        """The reference's X for ``rows``: a pandas DataFrame of :attr:`x_columns`.

        Era and id are strings, benchmark and baseline columns keep their stored
        dtype; the index is each row's position in the data file, as in the
        reference's joined frame, and the rows come in the order of ``rows``.
        """
        import pandas as pd

        block = self.features_of(rows)
        position = {name: j for j, name in enumerate(self.feature_names)}
        columns: dict[str, object] = {}
        for name in self.x_columns:
            if name in position:
                columns[name] = block[:, position[name]]
            elif name == self.era_col:
                eras = np.asarray(self.eras, dtype=object)[self.era_codes[rows]]
                columns[name] = pd.array(eras, dtype="str")
            elif name == self.id_col:
                columns[name] = pd.array(self.ids.gather(rows).to_list(), dtype="str")
            else:
                columns[name] = self.available[name][rows]
        return pd.DataFrame(columns, index=pd.Index(np.asarray(rows, dtype=np.int64)))

    def y_series(self, rows: np.ndarray, values: np.ndarray | None = None):
        """The reference's y for ``rows`` (the stored target, or ``values``) as a Series."""
        import pandas as pd

        if values is None:
            values = self.stored_target.gather(rows).to_numpy()
        return pd.Series(
            values, index=pd.Index(np.asarray(rows, dtype=np.int64)), name=self.target_col
        )


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
    ``allocate(shape, dtype)`` makes the matrix (the feature cache passes a mapped file,
    whose pages are handed back as it is written, so it never becomes resident).
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
            block = chunk.to_numpy().astype(dtype, copy=False)
            del chunk
            # each chunk writes into every row's page: a mapped cache file hands them
            # back (to the page cache) a row block at a time
            for first in range(0, n_rows, WRITE_ROWS):
                rows = slice(first, first + WRITE_ROWS)
                matrix[rows, start : start + len(names)] = block[rows]
                release_pages(matrix)
            del block
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
    benchmark_col: str | None  # data.benchmark_model resolved to one of them
    baseline_path: Path | None


def _needs_benchmark_file(config: TrainConfig) -> bool:
    """Whether a missing benchmark file must stop the run (otherwise BMC is skipped)."""
    model = config.model
    custom_frames = not is_builtin(model.type) and model.input_format == "pandas"
    return bool(model.target_transform or "benchmark_models" in model.input_groups or custom_frames)


def resolve_benchmark_column(columns: list[str], name: str) -> str | None:
    """``name`` itself, else the one column ending in ``_name`` (the reference's rule)."""
    if name in columns:
        return name
    matches = [c for c in columns if c.endswith(f"_{name}")]
    return matches[0] if len(matches) == 1 else None


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
    benchmark_col = None
    if bench_path.is_file():
        bench_names = _schema_names(bench_path)
        bench_columns = [c for c in bench_names if c not in (cfg.id_col, cfg.era_col)]
        if cfg.id_col not in bench_names:
            raise DataError(f"{bench_path}: no {cfg.id_col} column to join by; rebuild it")
        benchmark_col = resolve_benchmark_column(bench_columns, cfg.benchmark_model)
        if benchmark_col is None:
            raise config.error(
                "data.benchmark_model",
                f"{cfg.benchmark_model!r} is not in {bench_path} (nor one column ending in "
                f"_{cfg.benchmark_model}); available: " + ", ".join(bench_columns),
            )
        column = config.transform_benchmark_col
        if column is not None and column not in bench_columns:
            raise config.error(
                "model.target_transform.benchmark_col",
                f"{column!r} is not in {bench_path}; available: " + ", ".join(bench_columns),
            )
    elif _needs_benchmark_file(config):
        key = "data.benchmark_data_path"
        raise DataError(
            f"{bench_path} not found ({key}); build it with `nx build-data` or set {key}"
        )
    else:
        bench_path = None

    baseline_path = None
    if "baseline" in config.model.available_groups:
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
    return _Inputs(features, full_path, bench_path, bench_columns, benchmark_col, baseline_path)


def check_inputs(config: TrainConfig, data_dir: Path | str) -> Path:
    """Every check against the data that needs no feature values (files, columns, folds).

    Cheap (schemas and the era column), so a multi-config run can check every config
    before it trains the first one. Returns the data file the config trains on.
    """
    inputs = _resolve_inputs(config, Path(data_dir))
    if config.training.cv.enabled:
        era = config.data.era_col
        eras = pl.scan_parquet(inputs.full_path).select(pl.col(era).cast(pl.String).unique())
        folds_for(config, eras.collect()[era].to_list())
    return inputs.full_path


def x_columns(
    groups: list[str], features: list[str], bench_columns: list[str], config: TrainConfig
) -> list[str]:
    """The reference's ``build_x_cols``: columns of each group in order, duplicates dropped."""
    cfg = config.data
    columns: list[str] = []
    for group in groups:
        if group == "features":
            columns += features
        elif group == "era":
            columns.append(cfg.era_col)
        elif group == "benchmark_models":
            columns += bench_columns
        elif group == "baseline":
            columns.append(config.model.baseline.name)
        elif group == "id":
            columns.append(cfg.id_col)
    return list(dict.fromkeys(columns))


def _reject_infinite_target(frame: pl.DataFrame, target: str, era: str, path: Path) -> None:
    """The rule of :mod:`nx.engine.metrics` (infinite values are errors, NaN is missing),
    applied before training rather than when the OOF predictions are scored."""
    infinite = frame.filter(pl.col(target).cast(pl.Float64).is_infinite())
    if infinite.height:
        first = min(infinite[era].to_list(), key=era_sort_key)
        raise DataError(
            f"{path}: target column '{target}' has {infinite.height} infinite value"
            f"{'s' if infinite.height != 1 else ''} (first in era {first}); nx trains and "
            "scores finite numbers only (NaN counts as missing): fix the data file"
        )


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
            pl.col(cfg.target_col),
        )
        .collect()
    )
    if not frame.schema[cfg.target_col].is_numeric():
        raise config.error(
            "data.target_col", f"{cfg.target_col!r} of {full_path} is not numeric; pick a target"
        )
    if frame[cfg.id_col].n_unique() != frame.height:
        raise DataError(f"{full_path}: column {cfg.id_col} has duplicate ids; rebuild it")
    _reject_infinite_target(frame, cfg.target_col, cfg.era_col, full_path)
    eras = sorted(frame[cfg.era_col].unique().to_list(), key=era_sort_key)
    if config.training.cv.enabled:
        folds_for(config, eras)
    era_index = pl.DataFrame({cfg.era_col: eras, "__code": np.arange(len(eras), dtype=np.int32)})
    era_codes = (
        frame.select(cfg.era_col)
        .join(era_index, on=cfg.era_col, how="left", maintain_order="left")["__code"]
        .to_numpy()
    )

    groups = config.model.available_groups
    inputs_wanted = config.model.input_groups
    available: dict[str, np.ndarray] = {}
    benchmark = transform_benchmark = None
    ids = frame.select(cfg.id_col, cfg.era_col)
    bench_columns: list[str] = []
    if inputs.bench_path is not None:
        bench_columns = inputs.bench_columns
        joined = _join_by_id(
            ids,
            _read_by_id(inputs.bench_path, cfg.id_col, cfg.era_col, bench_columns),
            bench_columns,
            id_col=cfg.id_col,
            era_col=cfg.era_col,
            what=str(inputs.bench_path),
        )
        for column in bench_columns:
            available[column] = _as_numpy(joined[column])
        # as stored: numerai-tools' corr with a float32 benchmark is float32 arithmetic
        benchmark = available[inputs.benchmark_col]
        if config.transform_benchmark_col is not None:
            transform_benchmark = available[config.transform_benchmark_col].astype(np.float64)
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
        available[baseline.name] = _as_numpy(joined[baseline.pred_col])

    extra: dict[str, np.ndarray] = {}
    for group in inputs_wanted:
        if group == "benchmark_models":
            for column in bench_columns:
                extra[column] = available[column].astype(np.float32)
        elif group == "baseline":
            extra[config.model.baseline.name] = available[config.model.baseline.name].astype(
                np.float32
            )
        elif group == "era":
            numeric = [
                era_sort_key(e)[1] if era_sort_key(e)[0] == 0 else i for i, e in enumerate(eras)
            ]
            extra[cfg.era_col] = np.asarray(numeric, dtype=np.float32)[era_codes]

    features = inputs.features
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
        nan_mask = all_missing_mask(
            matrix, era_codes, len(eras), config.preprocessing.missing_value
        )
    trains_on_features = "features" in inputs_wanted
    source = MatrixSource(
        features=matrix if trains_on_features else np.empty((frame.height, 0), dtype=np.int8),
        feature_names=features if trains_on_features else [],
        extra=np.column_stack(list(extra.values())) if extra else None,
        extra_names=list(extra),
        era_codes=era_codes,
        nan_mask=nan_mask if trains_on_features else None,
    )
    return TrainingData(
        ids=frame[cfg.id_col],
        eras=eras,
        era_codes=era_codes,
        target=frame[cfg.target_col].cast(pl.Float64).to_numpy(),
        source=source,
        benchmark=benchmark,
        transform_benchmark=transform_benchmark,
        full_data_path=full_path,
        benchmark_data_path=inputs.bench_path,
        feature_names=features,
        stored_target=frame[cfg.target_col],
        benchmark_col=inputs.benchmark_col,
        x_columns=x_columns(groups, features, bench_columns, config),
        available=available,
        feature_matrix=matrix,
        nan_mask=nan_mask,
        id_col=cfg.id_col,
        era_col=cfg.era_col,
        target_col=cfg.target_col,
    )


def _as_numpy(column: pl.Series) -> np.ndarray:
    """A joined numeric column in its stored dtype, NaN where the join found no row."""
    dtype = column.dtype
    if dtype.is_float():
        return column.fill_null(np.nan).to_numpy()
    return column.cast(pl.Float64).fill_null(np.nan).to_numpy()


def _read_by_id(path: Path, id_col: str, era_col: str, columns: list[str]) -> pl.DataFrame:
    """``id`` (and ``era`` when the file has it) plus ``columns`` in their stored dtype."""
    names = _schema_names(path)
    frame = (
        pl.scan_parquet(path)
        .select(
            pl.col(id_col).cast(pl.String),
            *([pl.col(era_col).cast(pl.String)] if era_col in names else []),
            *[pl.col(c) for c in columns],
        )
        .collect()
    )
    text = [c for c in columns if not frame.schema[c].is_numeric()]
    if text:
        raise DataError(f"{path}: column {text[0]} is not numeric; rebuild it")
    return frame


def all_missing_mask(
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
