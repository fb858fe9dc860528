"""``nx data cache list|clear``: the feature-matrix cache (see nx.engine.data.cache)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    err_console,
    print_json,
    table_console,
)

TABLE_WIDTH = 140


def _row(entry) -> dict:
    return {
        "file": str(entry.npy),
        "data_file": entry.data_file,
        "feature_set": entry.feature_set,
        "rows": entry.n_rows,
        "features": entry.n_features,
        "bytes": entry.n_bytes,
        "stale": entry.stale,
    }


def cache_list_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR, json_output: JsonOption = False
) -> None:
    """List the cached feature matrices: data file, feature set, shape, size, fresh or stale."""
    from nx.engine.data.cache import cache_dir, list_cache

    entries = list_cache(data_dir)
    if json_output:
        print_json({"cache_dir": str(cache_dir(data_dir)), "entries": [_row(e) for e in entries]})
        return
    if not entries:
        err_console.print(
            f"No cached feature matrices under {cache_dir(data_dir)}", highlight=False
        )
        return
    from rich.table import Table

    table = Table(title=str(cache_dir(data_dir)))
    for column in ("data file", "feature set", "rows", "features", "size", "status"):
        table.add_column(
            column, justify="left" if column in ("data file", "feature set") else "right"
        )
    for e in entries:
        table.add_row(
            e.data_file,
            e.feature_set,
            "-" if e.n_rows is None else f"{e.n_rows:,}",
            f"{e.n_features:,}",
            f"{e.n_bytes / 2**20:,.1f} MiB",
            Text("stale", style="yellow") if e.stale else "fresh",
        )
    table_console(TABLE_WIDTH).print(table)
    total = sum(e.n_bytes for e in entries)
    err_console.print(f"{len(entries)} matrices, {total / 2**20:,.1f} MiB", highlight=False)


def cache_clear_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    stale: Annotated[
        bool,
        typer.Option("--stale", help="Delete only matrices whose data file changed or is gone."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete cached feature matrices (all, or only stale ones with --stale)."""
    from nx.engine.data.cache import clear_cache

    removed = clear_cache(data_dir, stale_only=stale)
    if json_output:
        print_json({"removed": [_row(e) for e in removed]})
        return
    freed = sum(e.n_bytes for e in removed) / 2**20
    err_console.print(f"Removed {len(removed)} cached matrices ({freed:,.1f} MiB)", highlight=False)


def register(data_app: typer.Typer) -> None:
    """Add the ``cache`` group (list, clear) to ``nx data``."""
    cache_app = typer.Typer(
        help="The feature-matrix cache under the data dir.", no_args_is_help=True
    )
    cache_app.command("list")(cache_list_command)
    cache_app.command("clear")(cache_clear_command)
    data_app.add_typer(cache_app, name="cache")
