"""Reading and joining what ``nx score`` needs: predictions, data, benchmark, meta model.

Everything is read lazily with polars (only the columns used, only the ids of the
predictions) and joined by id into one frame for :func:`nx.engine.metrics.score`.
"""

from __future__ import annotations

import json
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


@dataclass
class ScoreFrame:
    """The joined frame and the column names to score it with."""

    frame: pl.DataFrame
    pred_cols: list[str]
    target_col: str
    era_col: str
    benchmark_col: str | None = None
    meta_col: str | None = None
    feature_cols: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def warm_kernels_in_background() -> threading.Thread:
    """Start numba (import, target set-up, thread pool, the cached kernels of a
    score: about 0.4 s of mostly single-threaded Python) on a thread, so it overlaps reading the files, which
    polars does without the GIL. Join the thread before scoring."""

    def warm() -> None:
        from nx.engine.metrics import kernels

        keys = np.zeros(1, dtype=np.uint64)
        rows = np.zeros(1, dtype=np.int64)
        kernels.match_sorted(keys, rows, keys, rows)  # the join's kernel, as it is called
        # and the scoring kernels with the argument types metrics.score gives them
        values = np.zeros((1, 2))
        offsets = np.array([0, 2], dtype=np.int64)
        kernels.score_eras(values, values[0], values, offsets, np.zeros(1, dtype=np.bool_))
        # (not counting_order: a cold cache would compile it for files already in era order)

    thread = threading.Thread(target=warm, name="nx-warm-numba", daemon=True)
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


def _resolve_column(columns: list[str], name: str, path: Path, what: str) -> str:
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
        dtype = _schema(preds)[col]
        if not dtype.is_numeric():
            raise DataError(
                f"prediction column '{col}' of {inputs.predictions} is {dtype}, not numeric; "
                "score numeric columns only"
            )
    need_join = era_col not in columns or target_col not in columns or inputs.features
    keep = [c for c in (id_col, era_col, target_col) if c in columns] + pred_cols
    frame = preds.select(list(dict.fromkeys(keep))).collect()
    if frame.height == 0:
        raise DataError(f"{inputs.predictions} has no rows; nothing to score")
    has_id = id_col in frame.columns
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
    benchmark_col = None
    bench = _benchmark_values(inputs, frame, id_col, notes, progress)
    if bench is not None:
        sources.append((notes[-1].rsplit(" from ", 1)[-1], bench, False))
        benchmark_col = BENCHMARK_COL
    meta_col = None
    if inputs.meta_model is not None:
        sources.append((str(inputs.meta_model), _meta_values(inputs, id_col), False))
        meta_col = META_COL
    if has_id and not sources:
        _check_unique_ids(frame[id_col], _id_keys(frame[id_col])[2], inputs.predictions)
    if sources:
        names = ", ".join(Path(path).name for path, _, _ in sources)
        with progress.task(f"Joining by id: {names}", total=None):
            from concurrent.futures import ThreadPoolExecutor

            # reading the files, hashing/sorting the ids and aligning each file release
            # the GIL: overlap them
            with ThreadPoolExecutor(max_workers=2) as pool:
                reading = pool.submit(pl.collect_all, [table for _, table, _ in sources])
                # the other worker keys the files' ids as soon as they are read, while
                # this thread keys the predictions' (also for the duplicate check)
                keying = pool.submit(lambda: _right_keys(reading.result(), id_col))
                left = _id_keys(frame[id_col])
                _check_unique_ids(frame[id_col], left[2], inputs.predictions)
                tables = reading.result()
                alignments = _align_all(pool, left, tables, id_col, keying.result())
            for (path, _, must_match), table, aligned in zip(
                sources, tables, alignments, strict=True
            ):
                if aligned is None:  # duplicate ids or a hash collision: plain join
                    aligned = frame.select(id_col).join(table, on=id_col, how="left")
                    if aligned.height != frame.height:
                        raise DataError(
                            f"{path} has duplicate ids in '{id_col}'; keep one row per id"
                        )
                    aligned = aligned.drop(id_col)
                    found = aligned.height - aligned[aligned.columns[0]].null_count()
                else:
                    aligned, found = aligned
                if must_match and found < frame.height:
                    raise DataError(
                        f"{frame.height - found} of {frame.height} ids of {inputs.predictions} "
                        f"are not in {path}; score predictions for that data (or pass --data)"
                    )
                frame = frame.hstack(aligned)
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


def _check_unique_ids(ids: pl.Series, sorted_hashes: np.ndarray, path: Path) -> None:
    """Distinct hashes prove distinct ids; only on a tie are the strings compared."""
    if not np.any(sorted_hashes[1:] == sorted_hashes[:-1]):
        return
    n_unique = ids.n_unique()
    if n_unique != len(ids):
        raise DataError(
            f"{path} has {len(ids) - n_unique} duplicate ids in '{ids.name}'; keep one row per id"
        )


def _right_keys(tables: list[pl.DataFrame], id_col: str) -> list:
    """Per table: :func:`_id_keys` of its ids, or the index of an earlier table with
    the same id column (the data and benchmark files of one version usually share
    it), whose row match it then reuses."""
    out: list = []
    for t, table in enumerate(tables):
        same = next(
            (
                u
                for u in range(t)
                if not isinstance(out[u], int) and table[id_col].equals(tables[u][id_col])
            ),
            None,
        )
        out.append(same if same is not None else _id_keys(table[id_col]))
    return out


def _align_all(pool, left, tables: list[pl.DataFrame], id_col: str, right_keys: list) -> list:
    """Each table's columns in the order of the left ids (see :func:`_gather`), the
    matches on the pool; None for a table with repeated ids or a hash collision."""
    from nx.engine.metrics.kernels import match_sorted

    def match(right):
        rows, duplicate = match_sorted(left[2], left[3], right[2], right[3])
        found = rows >= 0
        if duplicate or not np.array_equal(right[1][rows[found]], left[1][found]):
            return None
        return rows, found

    own = [t for t, keys in enumerate(right_keys) if not isinstance(keys, int)]
    matched = dict(zip(own, pool.map(lambda t: match(right_keys[t]), own), strict=True))
    out = []
    for t, table in enumerate(tables):
        keys = right_keys[t]
        m = matched[keys if isinstance(keys, int) else t]
        out.append(None if m is None else _gather(table, id_col, *m))
    return out


def _id_keys(ids: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of the ids (equal pairs mean equal ids: a chance
    collision of both is about 1e-26 for millions of ids), plus the first hash sorted
    and its sorting order, for :func:`nx.engine.metrics.kernels.match_sorted`."""
    first = ids.hash(_SEEDS[0]).to_numpy()
    order = np.argsort(first)  # numpy's SIMD sort: ~0.1 s for 3M keys
    return first, ids.hash(_SEEDS[1]).to_numpy(), first[order], order


def _gather(
    table: pl.DataFrame, id_col: str, rows: np.ndarray, found: np.ndarray
) -> tuple[pl.DataFrame, int]:
    """``table``'s columns (but id) in the order of the left ids (``rows[i]``: the row
    of left id i, -1 when missing: null/NaN there) and how many were found."""
    n_found = int(found.sum())
    safe = np.where(found, rows, 0)
    columns = []
    for col in table.columns:
        if col == id_col:
            continue
        series = table[col]
        if series.dtype.is_numeric() and series.null_count() == 0:
            values = series.to_numpy()[safe]
            if n_found < len(rows):
                values = np.where(found, values, np.nan)
            columns.append(pl.Series(col, values))
        else:
            if series.dtype == pl.String and col != id_col:
                # few distinct labels (eras): gather small codes, not strings
                series = series.cast(pl.Enum(series.unique().sort().to_list()))
            index = pl.Series(safe, dtype=pl.Int64)
            if n_found < len(rows):
                index = pl.select(pl.when(pl.lit(found)).then(index)).to_series()
            columns.append(series.gather(index).alias(col))
    return pl.DataFrame(columns), n_found


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
    column = _resolve_column(columns, name, path, "benchmark model")
    if not _schema(bench)[column].is_numeric():
        raise DataError(f"benchmark column '{column}' of {path} is not numeric")
    notes.append(f"BMC against {column} from {path}")
    return bench.select(id_col, pl.col(column).cast(pl.Float64).alias(BENCHMARK_COL))


def _meta_values(inputs: ScoreInputs, id_col: str) -> pl.LazyFrame:
    path = Path(inputs.meta_model)
    meta = scan_table(path, "meta model")
    schema = _schema(meta)
    if id_col not in schema.names():
        raise DataError(f"meta model file {path} has no '{id_col}' column; check --id-col")
    if META_MODEL_COL in schema.names():
        column = META_MODEL_COL
    else:
        numeric = [c for c, d in schema.items() if d.is_numeric() and c not in _RESERVED]
        if len(numeric) != 1:
            raise DataError(
                f"meta model file {path} has no '{META_MODEL_COL}' column; give a file "
                "with that column"
            )
        column = numeric[0]
    return meta.select(id_col, pl.col(column).cast(pl.Float64).alias(META_COL))


def score_document(frame: ScoreFrame, summary: dict[str, Any], n_eras: int) -> dict[str, Any]:
    """The ``nx score --json`` document: rows, eras and the per-column summary."""
    return {"rows": frame.frame.height, "eras": n_eras, "columns": summary}
