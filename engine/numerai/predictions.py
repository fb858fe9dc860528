"""Checks of a predictions file before it is sent to Numerai (submission or diagnostics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nx.engine.errors import DataError
from nx.engine.numerai.operations import CLASSIC, check_tournament
from nx.engine.paths import DEFAULT_DATA_VERSION, version_dir

ID_COLUMNS = {8: "id", 11: "numerai_ticker", 12: "symbol"}


def existing_file(path: Path, what: str, suffixes: tuple[str, ...]) -> Path:
    """``path`` when it is a non-empty file ending with one of ``suffixes``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} not found; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"{what} {path} is empty; write it again")
    if path.suffix.lower() not in suffixes:
        raise DataError(f"{what} {path} must end with {' or '.join(suffixes)}; rename it")
    return path


def validate_predictions(
    path: Path | str,
    *,
    tournament: int = CLASSIC,
    data_dir: Path | str | None = None,
    data_version: str = DEFAULT_DATA_VERSION,
) -> dict[str, Any]:
    """Check a predictions file before it is sent: the tournament's id column and one
    numeric prediction column, values in [0, 1], no missing value, unique ids, and
    (Classic) the ids equal to those of ``<data_dir>/<version>/live.parquet`` when that
    file is there."""
    import polars as pl

    from nx.engine.metrics.io import scan_table

    check_tournament(tournament)
    path = existing_file(Path(path), "predictions file", (".csv", ".parquet"))
    id_col = ID_COLUMNS[tournament]
    lazy = scan_table(path, "predictions")
    schema = lazy.collect_schema()
    if id_col not in schema:
        raise DataError(
            f"predictions file {path} has no {id_col!r} column (columns: "
            f"{', '.join(schema.names()[:10])}); name the id column {id_col!r}"
        )
    others = [c for c in schema.names() if c != id_col]
    if len(others) != 1:
        raise DataError(
            f"predictions file {path} must have exactly one prediction column besides "
            f"{id_col!r}, not {len(others)} ({', '.join(others[:10]) or 'none'}); drop the others"
        )
    pred_col = others[0]
    if not schema[pred_col].is_numeric():
        raise DataError(
            f"prediction column {pred_col!r} of {path} is {schema[pred_col]}, not numbers; "
            "write numeric predictions"
        )
    values = pl.col(pred_col).cast(pl.Float64)
    stats = lazy.select(
        pl.len().alias("rows"),
        pl.col(id_col).n_unique().alias("unique_ids"),
        (values.is_null() | values.is_nan()).sum().alias("missing"),
        ((values < 0) | (values > 1)).sum().alias("outside"),
        values.min().alias("min"),
        values.max().alias("max"),
    ).collect()
    row = stats.row(0, named=True)
    if row["rows"] == 0:
        raise DataError(f"predictions file {path} has no rows; write the predictions again")
    if row["missing"]:
        raise DataError(
            f"{row['missing']} of {row['rows']} predictions in {path} are missing (NaN or "
            "empty); Numerai rejects them: fill every row"
        )
    if row["outside"]:
        raise DataError(
            f"{row['outside']} predictions in {path} are outside [0, 1] (min {row['min']:.4g}, "
            f"max {row['max']:.4g}); rank them per era (e.g. rank(pct=True)) before submitting"
        )
    if row["unique_ids"] != row["rows"]:
        raise DataError(
            f"predictions file {path} repeats {row['rows'] - row['unique_ids']} ids; "
            "keep one row per id"
        )
    live_path = None
    if tournament == CLASSIC and data_dir is not None:
        candidate = version_dir(data_dir, data_version) / "live.parquet"
        live_path = candidate if candidate.is_file() else None
    if live_path is not None:
        _check_live_ids(lazy, id_col, live_path, path)
    return {
        "path": str(path),
        "rows": row["rows"],
        "id_col": id_col,
        "prediction_col": pred_col,
        "min": row["min"],
        "max": row["max"],
        "live_ids_checked_against": str(live_path) if live_path else None,
    }


def _check_live_ids(lazy, id_col: str, live_path: Path, path: Path) -> None:
    import polars as pl

    from nx.engine.metrics.io import scan_table

    live = scan_table(live_path, "live data")
    if "id" not in live.collect_schema():
        raise DataError(f"live data {live_path} has no 'id' column; download it again")
    ours = lazy.select(pl.col(id_col).cast(pl.Utf8).alias("id"))
    theirs = live.select(pl.col("id").cast(pl.Utf8))
    missing = theirs.join(ours, on="id", how="anti").select(pl.len()).collect().item()
    extra = ours.join(theirs, on="id", how="anti").select(pl.len()).collect().item()
    if missing or extra:
        raise DataError(
            f"the ids of {path} differ from the live ids of {live_path}: {missing} live ids "
            f"have no prediction, {extra} ids are not live; predict on the current live data "
            "(`nx build-data` downloads it)"
        )
