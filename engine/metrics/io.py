"""Reading and joining what ``nx score`` needs: predictions, data, benchmark, meta model.

Everything is read lazily with polars (only the columns used, only the ids of the
predictions) and joined by id into one frame for :func:`nx.engine.metrics.score`.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nx.engine.errors import DataError
from nx.engine.paths import DEFAULT_DATA_DIR, version_dir
from nx.engine.progress import NO_PROGRESS, Progress

DEFAULT_BENCHMARK_MODEL = "lgbm_ender20"
META_MODEL_COL = "numerai_meta_model"
BENCHMARK_COL = "__nx_benchmark__"
META_COL = "__nx_meta_model__"
_SEEDS = (0x6E78, 0x5C0E)
_NOT_PREDICTIONS = ("target", "feature_")
_RESERVED = {"era", "id", "data_type", "date", "numerai_ticker", "symbol", "cv_fold"}


@dataclass
class ScoreInputs:
    """Where to find everything (``None`` = the data version's built default)."""

    predictions: Path
    pred_cols: list[str] = field(default_factory=list)
    target_col: str = "target"
    era_col: str = "era"
    id_col: str = "id"
    data: Path | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    data_version: str = "v5.2"
    benchmark_data: Path | None = None
    benchmark_model: str | None = None
    meta_model: Path | None = None
    features: str | None = None
    keep_ids: bool = False  # keep the id column in the joined frame (scoring needs none)


@dataclass
class ScoreFrame:
    """The joined frame (rows in the data file's order when that was joined, without
    the id column then unless ``keep_ids``) and the column names to score it with."""

    frame: pl.DataFrame
    pred_cols: list[str]
    target_col: str
    era_col: str
    benchmark_col: str | None = None
    meta_col: str | None = None
    feature_cols: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def score_loaded(
    scored: ScoreFrame, *, max_nan_fraction: float | None = None, progress: Progress = NO_PROGRESS
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """:func:`nx.engine.metrics.score` of a frame from :func:`load_score_frame`, with the
    columns it resolved (what ``nx score`` and the MCP tool compute): (per-era table,
    summary)."""
    from nx.engine import metrics

    limit = {} if max_nan_fraction is None else {"max_nan_fraction": max_nan_fraction}
    return metrics.score(
        scored.frame,
        scored.pred_cols,
        target_col=scored.target_col,
        era_col=scored.era_col,
        benchmark_col=scored.benchmark_col,
        meta_col=scored.meta_col,
        feature_cols=scored.feature_cols or None,
        progress=progress,
        **limit,
    )


def warm_kernels_in_background() -> threading.Thread:
    """Start numba (import, target set-up, thread pool, the cached kernels of a
    score: about 0.4 s of mostly single-threaded Python) on a thread, so it overlaps
    reading the files, which polars does without the GIL. Join the thread before
    scoring. On a cold cache a child process compiles half of the kernels meanwhile
    (:mod:`nx.engine.metrics.warmup`)."""
    from nx.engine.metrics import warmup

    warmup.begin()  # the id join waits for its decision on a child
    thread = threading.Thread(target=warmup.warm_score_kernels, name="nx-warm-numba", daemon=True)
    thread.start()
    return thread


def default_benchmark_model(data_version: str) -> str:
    """``v52_lgbm_ender20`` for v5.2, ``v53_lgbm_ender20`` for v5.3, ..."""
    digits = "".join(ch for ch in data_version if ch.isdigit())
    return f"v{digits}_{DEFAULT_BENCHMARK_MODEL}"


def scan_table(path: Path, what: str) -> pl.LazyFrame:
    """A lazy scan of a parquet or CSV file; one-line errors for the usual failures."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file {path} not found; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"{what} file {path} is empty; write the file again")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            lazy = pl.scan_parquet(path)
        elif suffix in (".csv", ".txt"):
            lazy = pl.scan_csv(path, infer_schema_length=10_000)
        else:
            raise DataError(f"{what} file {path} is neither .parquet nor .csv; convert it")
        lazy.collect_schema()
    except DataError:
        raise
    except Exception as error:  # polars raises several types for unreadable files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot read {what} file {path} ({first}); is it parquet/CSV?") from None
    return lazy


def _schema(lazy: pl.LazyFrame) -> pl.Schema:
    return lazy.collect_schema()


def default_pred_cols(columns: list[str], id_col: str, era_col: str, target_col: str) -> list[str]:
    """``prediction`` if present, else every column that is not id/era/target/feature."""
    if "prediction" in columns:
        return ["prediction"]
    skip = _RESERVED | {id_col, era_col, target_col}
    return [c for c in columns if c not in skip and not c.startswith(_NOT_PREDICTIONS)]


def _default_data_path(inputs: ScoreInputs) -> Path:
    folder = version_dir(inputs.data_dir, inputs.data_version)
    for name in ("full.parquet", "validation.parquet"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"no data to join era/target from: {folder}/full.parquet (or validation.parquet) "
        "not found; run `nx build-data` or pass --data FILE"
    )


def _feature_set(inputs: ScoreInputs, data_columns: list[str], data_path: Path) -> list[str]:
    all_features = [c for c in data_columns if c.startswith("feature_")]
    features_json = version_dir(inputs.data_dir, inputs.data_version) / "features.json"
    name = inputs.features
    if features_json.is_file():
        try:
            sets = json.loads(features_json.read_text())["feature_sets"]
        except (ValueError, KeyError):
            raise DataError(
                f"{features_json} has no 'feature_sets'; download features.json again"
            ) from None
        if name in sets:
            chosen = list(sets[name])
            missing = [c for c in chosen if c not in data_columns]
            if missing:
                raise DataError(
                    f"feature set '{name}' names {len(missing)} columns missing from "
                    f"{data_path} (e.g. {missing[0]}); use data of the same version"
                )
            return chosen
        if name != "all":
            raise DataError(
                f"unknown feature set '{name}'; {features_json} offers: {', '.join(sorted(sets))}"
            )
    elif name != "all":
        raise DataError(
            f"feature set '{name}' needs {features_json}, which is missing; "
            "run `nx build-data` or use --features all"
        )
    if not all_features:
        raise DataError(f"{data_path} has no feature_* columns for --features {name}")
    return all_features


def resolve_column(columns: list[str], name: str, path: Path, what: str) -> str:
    """``name`` itself, else the unique column ending in ``_<name>``."""
    if name in columns:
        return name
    matches = [c for c in columns if c.endswith(f"_{name}")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DataError(
            f"{what} '{name}' matches several columns of {path} ({', '.join(matches)}); "
            "give the full column name"
        )
    shown = ", ".join(c for c in columns if c not in ("id", "era"))
    raise DataError(f"{what} '{name}' not found in {path}; columns there: {shown}")


def load_score_frame(inputs: ScoreInputs, progress: Progress = NO_PROGRESS) -> ScoreFrame:
    """Read the predictions, join what they lack by id, and name the columns to score."""
    preds = scan_table(inputs.predictions, "predictions")
    columns = list(_schema(preds).names())
    id_col, era_col, target_col = inputs.id_col, inputs.era_col, inputs.target_col
    pred_cols = list(inputs.pred_cols) or default_pred_cols(columns, id_col, era_col, target_col)
    if not pred_cols:
        raise DataError(
            f"{inputs.predictions} has no prediction column (only {', '.join(columns)}); "
            "name one with --pred-col"
        )
    for col in pred_cols:
        if col not in columns:
            raise DataError(
                f"prediction column '{col}' not in {inputs.predictions}; columns there: "
                f"{', '.join(columns)}"
            )
    need_join = era_col not in columns or target_col not in columns or inputs.features
    keep = [c for c in (id_col, era_col, target_col) if c in columns] + pred_cols
    frame = preds.select(list(dict.fromkeys(keep))).collect()
    if frame.height == 0:  # checked first: a header-only CSV has String columns
        raise DataError(f"{inputs.predictions} has no rows; nothing to score")
    for col in pred_cols:
        dtype = frame.schema[col]
        if frame[col].null_count() == frame.height:
            raise DataError(
                f"prediction column '{col}' of {inputs.predictions} has no values; "
                "write the predictions into it"
            )
        if not dtype.is_numeric():
            raise DataError(
                f"prediction column '{col}' of {inputs.predictions} is {dtype}, not numeric; "
                "score numeric columns only"
            )
    has_id = id_col in frame.columns
    if has_id:
        check_no_null_ids(frame[id_col], inputs.predictions)
    if not has_id and (need_join or inputs.meta_model or inputs.benchmark_data):
        raise DataError(
            f"{inputs.predictions} has no id column '{id_col}' to join era/target/benchmark "
            "by; add it or name it with --id-col"
        )
    notes: list[str] = []
    feature_cols: list[str] = []
    # Each file is read once (only the columns used) and its rows aligned to the
    # predictions by id: hashed ids matched by one sort each, or a polars left join
    # when that cannot be used (duplicate ids).
    sources: list[tuple[str, pl.LazyFrame, bool]] = []  # (path, (id, values), must match)
    if need_join:
        data_path = Path(inputs.data) if inputs.data else _default_data_path(inputs)
        data = scan_table(data_path, "data")
        data_columns = list(_schema(data).names())
        wanted = [c for c in (era_col, target_col) if c not in frame.columns]
        for col in [id_col, *wanted]:
            if col not in data_columns:
                raise DataError(
                    f"column '{col}' not in {data_path}; pass --data with it or check "
                    "--id-col/--era-col/--target"
                )
        if inputs.features:
            feature_cols = _feature_set(inputs, data_columns, data_path)
            wanted += [c for c in feature_cols if c not in frame.columns]
        sources.append((str(data_path), data.select(id_col, *wanted), True))
        notes.append(f"era/target joined from {data_path}")
    # benchmark and meta model keep their names (messages name them) unless taken
    taken = set(frame.columns) | {c for _, table, _ in sources for c in _schema(table).names()}
    benchmark_col = None
    bench = _benchmark_values(inputs, frame, id_col, notes, progress)
    if bench is not None:
        bench, benchmark_col = _renamed(bench, BENCHMARK_COL, taken)
        sources.append((notes[-1].rsplit(" from ", 1)[-1], bench, False))
        taken.add(benchmark_col)
    meta_col = None
    if inputs.meta_model is not None:
        meta, meta_col = _renamed(_meta_values(inputs, id_col), META_COL, taken)
        sources.append((str(inputs.meta_model), meta, False))
    if has_id and not sources:
        _IdIndex(frame[id_col], inputs.predictions)  # the duplicate check
    if sources:
        names = ", ".join(Path(path).name for path, _, _ in sources)
        with progress.task(f"Joining by id: {names}", total=None):
            from concurrent.futures import ThreadPoolExecutor

            # polars reads the files without the GIL while this thread indexes the
            # predictions' ids (numba, also without the GIL)
            with ThreadPoolExecutor(max_workers=1) as pool:
                reading = pool.submit(pl.collect_all, [table for _, table, _ in sources])
                index = _IdIndex(frame[id_col], inputs.predictions)
                tables = reading.result()
            done: list[tuple[pl.Series, Any]] = []
            matches = [index.match(table[id_col], done) for table in tables]
            order = _frame_order(sources, tables, matches)
            columns = [_take(frame if inputs.keep_ids else frame.drop(id_col), order)]
            for (path, _, must_match), table, rows in zip(sources, tables, matches, strict=True):
                if rows is False:  # duplicate ids or a hash collision: plain join
                    aligned = frame.select(id_col).join(
                        table, on=id_col, how="left", maintain_order="left"
                    )
                    if aligned.height != frame.height:
                        raise DataError(
                            f"{path} has duplicate ids in '{id_col}'; keep one row per id"
                        )
                    aligned = _take(aligned.drop(id_col), order)
                    found = int(frame[id_col].is_in(table[id_col]).sum())
                elif rows is None:  # the predictions' ids in their order
                    aligned, found = _take(table.drop(id_col), order), frame.height
                else:
                    found = int(np.count_nonzero(rows >= 0))
                    aligned = _take(table.drop(id_col), rows if order is None else rows[order])
                if must_match and found < frame.height:
                    raise DataError(
                        f"{frame.height - found} of {frame.height} ids of {inputs.predictions} "
                        f"are not in {path}; score predictions for that data (or pass --data)"
                    )
                columns.append(aligned)
            frame = pl.concat(columns, how="horizontal")
    return ScoreFrame(
        frame=frame,
        pred_cols=pred_cols,
        target_col=target_col,
        era_col=era_col,
        benchmark_col=benchmark_col,
        meta_col=meta_col,
        feature_cols=feature_cols,
        notes=notes,
    )


def check_no_null_ids(ids: pl.Series, path: Path) -> None:
    """Every row of ``path`` has an id (a null id is missing, not a duplicate)."""
    if ids.null_count():
        raise DataError(
            f"{ids.null_count()} rows of {path} have no id in '{ids.name}'; give every row an id"
        )


def check_ids(ids: pl.Series, path: Path) -> None:
    """The ids of ``path`` are present and unique (the check ``nx score`` makes)."""
    check_no_null_ids(ids, path)
    _IdIndex(ids, path)


class _IdIndex:
    """The predictions' ids as two independent 64-bit hashes in the hash join of
    :mod:`nx.engine.metrics.join` (equal pairs mean equal ids: a chance collision of
    both is about 1e-26 for millions of ids), which each file's ids are looked up in.
    Building it is the duplicate check: distinct pairs prove distinct ids, and only
    on a repeated pair are the strings compared."""

    def __init__(self, ids: pl.Series, path: Path) -> None:
        from nx.engine.metrics.join import index_keys

        self.ids = ids
        self.table: tuple | None = index_keys(*_hashes(ids))
        if self.table[-1]:
            n_unique = ids.n_unique()
            if n_unique != len(ids):
                raise DataError(
                    f"{path} has {len(ids) - n_unique} duplicate ids in '{ids.name}'; "
                    "keep one row per id"
                )
            self.table = None  # a collision of both hashes: the plain join decides

    def match(self, ids: pl.Series, done: list) -> np.ndarray | None | bool:
        """For each prediction the row of ``ids`` with its id (-1 when none); None
        when ``ids`` are the predictions' ids in their order, False when the plain
        join must do it (repeated ids, a hash collision). ``done`` holds the ids and
        match of the files aligned before: the data and benchmark files of one
        version share them."""
        if ids.equals(self.ids):
            return None
        match = next((m for other, m in done if ids.equals(other)), None)
        if match is None:
            match = self._match(ids)
            done.append((ids, match))
        return match

    def _match(self, ids: pl.Series) -> np.ndarray | bool:
        from nx.engine.metrics.join import lookup

        if self.table is None:
            return False
        rows, repeated = lookup(*self.table[:-1], *_hashes(ids))
        return False if repeated else rows


def _hashes(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    return ids.hash(_SEEDS[0]).to_numpy(), ids.hash(_SEEDS[1]).to_numpy()


def _frame_order(sources: list, tables: list[pl.DataFrame], matches: list) -> np.ndarray | None:
    """The order of the joined rows: the data file's (its rows are read in order, and
    its eras usually come sorted, so scoring moves no rows) when every prediction is
    in it at a known row; else the predictions' order (None). Entry k is the
    prediction that becomes row k."""
    for (_, _, must_match), table, rows in zip(sources, tables, matches, strict=True):
        if must_match:
            if not isinstance(rows, np.ndarray) or np.any(rows < 0):
                return None
            prediction_of = np.full(table.height, -1, dtype=np.int64)
            prediction_of[rows] = np.arange(len(rows))
            return prediction_of[prediction_of >= 0]
    return None


def _take(table: pl.DataFrame, rows: np.ndarray | None) -> pl.DataFrame:
    """``table``'s rows ``rows`` (-1: a missing row, null/NaN there); all of it, as
    it is, when ``rows`` is None or every row in order."""
    if rows is None or (len(rows) == table.height and np.array_equal(rows, np.arange(len(rows)))):
        return table
    found = rows >= 0
    complete = bool(found.all())
    safe = rows if complete else np.where(found, rows, 0)
    columns = []
    for col in table.columns:
        series = table[col]
        if series.dtype.is_numeric() and series.null_count() == 0:
            values = series.to_numpy()[safe]
            if not complete:
                values = np.where(found, values, np.nan)
            columns.append(pl.Series(col, values))
        else:
            if series.dtype == pl.String:
                # few distinct labels (eras): gather small codes, not strings
                series = series.cast(pl.Enum(series.unique().sort().to_list()))
            index = pl.Series(safe, dtype=pl.Int64)
            if not complete:
                index = pl.select(pl.when(pl.lit(found)).then(index)).to_series()
            columns.append(series.gather(index).alias(col))
    return pl.DataFrame(columns)


def _benchmark_values(
    inputs: ScoreInputs, frame: pl.DataFrame, id_col: str, notes: list[str], progress: Progress
) -> pl.LazyFrame | None:
    """(id, benchmark) to left-join: NaN where the benchmark has no row."""
    explicit = inputs.benchmark_data is not None
    path = (
        Path(inputs.benchmark_data)
        if explicit
        else version_dir(inputs.data_dir, inputs.data_version) / "full_benchmark_models.parquet"
    )
    if not explicit and not path.is_file():
        progress.warn(f"no BMC: {path} not found (run `nx build-data` or pass --benchmark-data)")
        return None
    if id_col not in frame.columns:
        return None
    bench = scan_table(path, "benchmark")
    columns = list(_schema(bench).names())
    if id_col not in columns:
        raise DataError(f"benchmark file {path} has no '{id_col}' column; check --id-col")
    name = inputs.benchmark_model or default_benchmark_model(inputs.data_version)
    column = resolve_column(columns, name, path, "benchmark model")
    if not _schema(bench)[column].is_numeric():
        raise DataError(f"benchmark column '{column}' of {path} is not numeric")
    notes.append(f"BMC against {column} from {path}")
    return bench.select(id_col, as_scored(column, _schema(bench)[column]))


def as_scored(column: str, dtype: pl.DataType) -> pl.Expr:
    """``column`` as the scores take it: float32 (Numerai's files) as it is, since
    numerai-tools does numerai_corr's target arithmetic on float32 values in float32
    and so does :func:`nx.engine.metrics.score`; any other numeric type as float64."""
    col = pl.col(column)
    return col if dtype == pl.Float32 else col.cast(pl.Float64)


def _renamed(table: pl.LazyFrame, fallback: str, taken: set[str]) -> tuple[pl.LazyFrame, str]:
    """``table``'s (id, value) with the value column keeping its name, or named
    ``fallback`` when another column of the joined frame has that name."""
    name = _schema(table).names()[1]
    if name in taken:
        return table.rename({name: fallback}), fallback
    return table, name


def _meta_values(inputs: ScoreInputs, id_col: str) -> pl.LazyFrame:
    path = Path(inputs.meta_model)
    meta = scan_table(path, "meta model")
    schema = _schema(meta)
    if id_col not in schema.names():
        raise DataError(f"meta model file {path} has no '{id_col}' column; check --id-col")
    if META_MODEL_COL not in schema.names():
        shown = ", ".join(c for c in schema.names() if c != id_col)
        raise DataError(
            f"meta model file {path} has no '{META_MODEL_COL}' column (columns there: "
            f"{shown}); pass Numerai's meta_model.parquet to --meta-model"
        )
    if not schema[META_MODEL_COL].is_numeric():
        raise DataError(f"'{META_MODEL_COL}' of {path} is {schema[META_MODEL_COL]}, not numeric")
    return meta.select(id_col, pl.col(META_MODEL_COL).cast(pl.Float64))


def score_document(frame: ScoreFrame, summary: dict[str, Any], n_eras: int) -> dict[str, Any]:
    """The ``nx score --json`` document: rows, eras and the per-column summary."""
    return {"rows": frame.frame.height, "eras": n_eras, "columns": summary}


PER_ERA_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def check_per_era_path(path: Path) -> None:
    """Refuse, before any work, a per-era file nx could not write: an unknown
    extension, a directory, a folder that is a file or that cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise DataError(
            f"--per-era {path} is a directory; give a file name such as {path}/per_era.parquet"
        )
    if path.suffix.lower() not in PER_ERA_FORMATS:
        raise DataError(
            f"--per-era {path}: name the file .parquet or .csv (the format follows the extension)"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # atomic_output creates the missing folders
    if not folder.is_dir():
        raise DataError(f"--per-era {path}: {folder} is a file, not a folder; choose another path")
    try:  # the real test (permissions, read-only mounts): create a file there
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise DataError(
            f"--per-era {path}: cannot write in {folder} ({error.strerror}); choose a "
            "writable folder"
        ) from None
    os.close(fd)
    os.unlink(probe)


def write_per_era(table: pl.DataFrame, path: Path) -> None:
    """Write the per-era table atomically as parquet or CSV (by extension)."""
    from nx.engine.paths import atomic_output

    path = Path(path)
    try:
        with atomic_output(path) as tmp:
            if PER_ERA_FORMATS[path.suffix.lower()] == "csv":
                table.with_columns(pl.col("era").cast(pl.String)).write_csv(tmp)
            else:
                table.write_parquet(tmp)
    except (OSError, pl.exceptions.PolarsError) as error:  # e.g. a full disk
        reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
        raise DataError(
            f"cannot write {path} ({reason}); check the folder and the free space"
        ) from None
