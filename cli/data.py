"""``nx build-data`` and ``nx data info``: thin wrappers over nx.engine.data.build/datainfo."""

from __future__ import annotations

from typing import Annotated

import typer

from nx.cli import data_cache
from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_DATA_VERSION,
    DataDirOption,
    DataVersionOption,
    JsonOption,
    RichProgress,
    cell,
    print_json,
    print_text,
    table_console,
)
from nx.engine.resources import format_bytes

SYNTHETIC_HELP = "Synthetic data"
DOWNSAMPLE_HELP = "Downsampling"
TABLE_WIDTH = 120  # file names are long; keep one row per file in narrow terminals


def _synthetic_text(spec: dict | None) -> str:
    if spec is None:
        return "not synthetic: Numerai's, or your own"
    return (
        f"synthetic: seed {spec.get('seed')}, {spec.get('eras')} eras x "
        f"{spec.get('rows_per_era')} rows x {spec.get('n_features')} features"
    )


def build_data_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    downsample_eras_step: Annotated[
        int,
        typer.Option(
            help="Keep every STEP-th era (by numeric era order) in the downsampled files; >= 2.",
            rich_help_panel=DOWNSAMPLE_HELP,
        ),
    ] = 4,
    downsample_eras_offset: Annotated[
        int,
        typer.Option(
            help="Position of the first kept era, in [0, STEP).", rich_help_panel=DOWNSAMPLE_HELP
        ),
    ] = 0,
    skip_downsample: Annotated[
        bool,
        typer.Option(
            "--skip-downsample",
            help="Build only full.parquet and full_benchmark_models.parquet.",
            rich_help_panel=DOWNSAMPLE_HELP,
        ),
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Rebuild outputs that exist (and regenerate/re-download the raw files).",
        ),
    ] = False,
    replace_raw: Annotated[
        bool,
        typer.Option(
            "--replace-raw",
            help="With --synthetic: replace raw files nx did not generate (downloaded from "
            "Numerai, or your own) with synthetic ones.",
        ),
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Never contact Numerai: build from the raw files already in the data dir.",
        ),
    ] = False,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Generate a synthetic dataset with Numerai's schema instead of downloading.",
            rich_help_panel=SYNTHETIC_HELP,
        ),
    ] = False,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Synthetic size: tiny (60 eras x 100 rows x 40 features), small "
            "(400 x 500 x 120, the default) or full (1200 x 5000 x 2748).",
            rich_help_panel=SYNTHETIC_HELP,
        ),
    ] = None,
    eras: Annotated[
        int | None,
        typer.Option(
            help="Synthetic: number of eras (overrides --scale).", rich_help_panel=SYNTHETIC_HELP
        ),
    ] = None,
    rows_per_era: Annotated[
        int | None,
        typer.Option(
            help="Synthetic: mean rows per era, +-10% (overrides --scale).",
            rich_help_panel=SYNTHETIC_HELP,
        ),
    ] = None,
    features: Annotated[
        int | None,
        typer.Option(
            help="Synthetic: number of features (overrides --scale).",
            rich_help_panel=SYNTHETIC_HELP,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Synthetic: random seed; the same seed gives identical files (default 42).",
            rich_help_panel=SYNTHETIC_HELP,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Get Numerai's raw files (download, or --synthetic) and build full.parquet,
    full_benchmark_models.parquet and their downsampled versions."""
    from nx.engine.data.build import build_data
    from nx.engine.errors import ConfigError

    synthetic_options = {
        "--scale": scale,
        "--eras": eras,
        "--rows-per-era": rows_per_era,
        "--features": features,
        "--seed": seed,
    }
    given = [name for name, value in synthetic_options.items() if value is not None]
    if given and not synthetic:
        raise ConfigError(
            f"{', '.join(given)} apply only to synthetic data; add --synthetic (or drop them)"
        )
    if synthetic and offline:
        raise ConfigError("--offline and --synthetic exclude each other; drop one of them")

    if replace_raw and not synthetic:
        raise ConfigError(
            "--replace-raw goes with --synthetic (to re-download Numerai's files use --rebuild)"
        )

    result = build_data(
        data_dir,
        data_version,
        synthetic=synthetic,
        scale=scale,
        seed=seed,
        eras=eras,
        rows_per_era=rows_per_era,
        n_features=features,
        step=downsample_eras_step,
        offset=downsample_eras_offset,
        skip_downsample=skip_downsample,
        rebuild=rebuild,
        replace_raw=replace_raw,
        download=not offline,
        progress=RichProgress(quiet=quiet or json_output),
    )
    import pyarrow.parquet as pq

    rows = {path: pq.read_metadata(path).num_rows for path in result.outputs}
    if json_output:
        print_json(
            {
                "version_dir": str(result.version_dir),
                "raw_source": result.raw_source,
                "synthetic": result.synthetic,
                "outputs": {
                    path.name: {
                        "path": str(path),
                        "rows": rows[path],
                        "bytes": path.stat().st_size,
                        "status": "built" if path in result.built else "reused",
                        "reason": result.reasons.get(path.name),
                    }
                    for path in result.outputs
                },
                "removed_stale_outputs": [str(p) for p in result.removed],
                "removed_temp_files": [str(p) for p in result.removed_temp_files],
            }
        )
        return
    from rich.table import Table

    title = f"{result.version_dir} (raw files: {result.raw_source}, {_synthetic_text(result.synthetic)})"
    table = Table(title=cell(title))
    for column in ("file", "rows", "size", "status"):
        right = column in ("rows", "size")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for path in result.outputs:
        if path in result.built:
            status = f"built ({result.reasons.get(path.name, 'new')})"
        else:
            status = "reused: up to date (--rebuild to redo)"
        table.add_row(
            cell(path.name), cell(rows[path]), format_bytes(path.stat().st_size), cell(status)
        )
    table_console(TABLE_WIDTH).print(table)
    for path in result.removed:
        print_text(f"Removed {path}: stale, and not rebuilt with --skip-downsample", style="dim")
    if result.removed_temp_files:
        names = ", ".join(p.name for p in result.removed_temp_files)
        print_text(f"Removed temporary files of an interrupted earlier run: {names}", style="dim")


def data_info_command(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    json_output: JsonOption = False,
) -> None:
    """List the files of a data version: rows, eras, features, targets and size."""
    from nx.engine.data.info import data_info

    info = data_info(data_dir, data_version)
    if json_output:
        print_json(info.to_dict())
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=cell(f"{info.version_dir} (raw files: {_synthetic_text(info.synthetic)})"))
    columns = ("file", "kind", "rows", "eras", "first", "last", "features", "targets", "size")
    for column in columns:
        left = column in ("file", "kind")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    table.add_column("status", no_wrap=False)

    for f in info.files:
        status = cell(f.status)
        if f.status and f.status.startswith("stale"):
            status.stylize("yellow")
        if f.problem:
            counts = [Text(f.problem, style="red"), *[cell(None)] * 5]
        else:
            counts = [cell(v) for v in (f.rows, f.eras, f.first_era, f.last_era)]
            counts += [cell(f.features), cell(f.targets)]
        table.add_row(cell(f.name), cell(f.kind), *counts, format_bytes(f.size_bytes), status)
    table_console(TABLE_WIDTH + 40).print(table)
    if info.feature_sets:
        sets = ", ".join(f"{name} {n}" for name, n in info.feature_sets.items())
        print_text(f"Feature sets: {sets}")
    if info.missing_raw:
        print_text(f"Missing raw files: {', '.join(info.missing_raw)}")
    if info.missing_built:
        print_text(f"Not built yet: {', '.join(info.missing_built)} (run `nx build-data`)")
    if info.stale_temp_files:
        print_text(
            f"Temporary files of killed runs: {', '.join(info.stale_temp_files)} "
            "(the next `nx build-data` removes them)",
            style="yellow",
        )


def register(app: typer.Typer) -> None:
    """Add ``build-data`` and the ``data`` group to the root app."""
    app.command("build-data")(build_data_command)
    data_app = typer.Typer(help="Inspect Numerai data directories.", no_args_is_help=True)
    data_app.command("info")(data_info_command)
    data_cache.register(data_app)
    app.add_typer(data_app, name="data")
