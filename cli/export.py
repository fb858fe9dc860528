"""``nx runtime install|list``, ``nx export``, ``nx check-pickle``, ``nx predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    RichProgress,
    err_console,
    print_json,
    table_console,
)

DEFAULT_RUNTIME = "3.12"  # nx.engine.export.runtimes.DEFAULT_RUNTIME, without importing it

RuntimeOption = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        help=f"Numerai runtime (Python version): 3.10, 3.11, 3.12, 3.13 (default {DEFAULT_RUNTIME}).",
        show_default=False,
    ),
]
WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Blend weights, one per model, comma-separated (e.g. 0.6,0.4); default equal.",
    ),
]
NeutralizeOption = Annotated[
    str | None,
    typer.Option(
        "--neutralize-features",
        help="Neutralize the blend per era against this feature set of features.json.",
    ),
]
ProportionOption = Annotated[
    float,
    typer.Option("--neutralize-proportion", help="How much of the exposure to remove (0..1)."),
]

runtime_app = typer.Typer(
    help="Numerai's pickle runtimes (one venv per Python version, exact pins).",
    no_args_is_help=True,
)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


@runtime_app.command("install")
def runtime_install(
    python: Annotated[
        str, typer.Option("--python", help="Runtime to install: 3.10, 3.11, 3.12 or 3.13.")
    ] = DEFAULT_RUNTIME,
    python_exe: Annotated[
        Path | None,
        typer.Option("--python-exe", help="The interpreter to use (default: pyenv, then PATH)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild an installed runtime.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Create the venv of a Numerai runtime and install exactly its pins from the index."""
    from nx.engine.export import install_runtime

    info = install_runtime(
        python, python_exe=python_exe, force=force, progress=RichProgress(quiet=json_out)
    )
    document = {
        "runtime": info.version,
        "status": info.status,
        "python": info.python,
        "path": str(info.path),
        "packages": info.installed,
    }
    if json_out:
        print_json(document)
    else:
        err_console.print(
            f"Runtime {info.version} ready: Python {info.python} at {info.path}", highlight=False
        )


@runtime_app.command("list")
def runtime_list(json_out: JsonOption = False) -> None:
    """Show Numerai's runtimes, their pins and which are installed."""
    from rich.table import Table

    from nx.engine.export import list_runtimes
    from nx.engine.export.runtimes import KEY_PACKAGES, RUNTIMES, runtime_root

    runtimes = list_runtimes()
    if json_out:
        print_json(
            {
                "root": str(runtime_root()),
                "runtimes": [
                    {
                        "runtime": r.version,
                        "status": r.status,
                        "python": r.python,
                        "path": str(r.path),
                        "pins": RUNTIMES[r.version],
                    }
                    for r in runtimes
                ],
            }
        )
        return
    table = Table(title=f"Numerai runtimes ({runtime_root()})")
    for column in ("runtime", "status", "python", *KEY_PACKAGES):
        table.add_column(column)
    for r in runtimes:
        pins = RUNTIMES[r.version]
        table.add_row(r.version, r.status, r.python or "-", *[pins[p] for p in KEY_PACKAGES])
    table_console(130).print(table)


def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The pickle to write.")],
    model_dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Model folders from `nx train --final` (models/<name>/).", show_default=False
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Train this config's final model first and export it too."),
    ] = None,
    weights: WeightsOption = None,
    runtime: RuntimeOption = None,
    neutralize_features: NeutralizeOption = None,
    neutralize_proportion: ProportionOption = 1.0,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Experiment directory for --config training."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="With --config: replace an earlier run of the same name."),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Write a Numerai pickle of saved models, built inside the runtime venv, plus a sidecar."""
    from nx.engine.export import export_models, runtime_python, train_final

    progress = RichProgress(quiet=json_out)
    dirs: list[Path | str] = list(model_dirs or [])
    if config is not None:
        runtime_python(runtime or DEFAULT_RUNTIME)  # fail before training, not after
        dirs.append(
            train_final(
                config,
                data_dir=data_dir,
                output_dir=output_dir,
                overwrite=overwrite,
                progress=progress,
            )
        )
    result = export_models(
        dirs,
        output,
        runtime=runtime or DEFAULT_RUNTIME,
        weights=weights,
        neutralize_features=neutralize_features,
        neutralize_proportion=neutralize_proportion,
        data_dir=data_dir,
        progress=progress,
    )
    document = {
        "pickle": str(result.pickle_path),
        "sidecar": str(result.sidecar_path),
        "seconds": round(result.seconds, 3),
        **result.sidecar,
    }
    if json_out:
        print_json(document)
        return
    sidecar = result.sidecar
    err_console.print(
        f"Wrote {result.pickle_path} ({_size(sidecar['bytes'])}, {len(sidecar['models'])} "
        f"model(s), {sidecar['feature_count']} features, runtime {sidecar['runtime']}, "
        f"Python {sidecar['python']}) in {result.seconds:.1f} s",
        highlight=False,
    )
    err_console.print(f"Sidecar: {result.sidecar_path}", highlight=False)


def check_pickle(
    pickle: Annotated[Path, typer.Argument(help="The pickle to check.", show_default=False)],
    runtime: RuntimeOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: Annotated[
        str | None,
        typer.Option(
            "--data-version", help="Data version of live.parquet (default: the sidecar's)."
        ),
    ] = None,
    eras: Annotated[
        int, typer.Option("--eras", help="Validation eras to run era by era and compare with nx.")
    ] = 2,
    json_out: JsonOption = False,
) -> None:
    """Run a pickle as Numerai's harness does, in its runtime venv, and report every rule."""
    from nx.engine.export import PickleCheckError
    from nx.engine.export import check_pickle as run_check

    try:
        report = run_check(
            pickle,
            runtime=runtime,
            data_dir=data_dir,
            data_version=data_version,
            check_eras=eras,
            progress=RichProgress(quiet=json_out),
        )
    except PickleCheckError as error:
        _show_report(error.report, json_out)
        raise
    _show_report(report, json_out)


def _show_report(report, json_out: bool) -> None:
    if json_out:
        print_json(report.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"{report.pickle} in runtime {report.runtime} (Python {report.python})")
    for column in ("rule", "result", "detail"):
        table.add_column(column)
    for rule in report.rules:
        if rule.get("skipped"):
            result = Text("skipped", style="yellow")
        elif rule["passed"]:
            result = Text("pass", style="green")
        else:
            result = Text("FAIL", style="bold red")
        table.add_row(rule["rule"], result, rule.get("detail", ""))
    console = table_console(120)
    console.print(table)
    console.print(
        f"size {_size(report.size_bytes)}, load {_seconds(report.load_seconds)}, predict "
        f"{_seconds(report.predict_seconds)} on {report.live_rows or '-'} live rows, peak memory "
        f"{_size(report.peak_rss_bytes)}",
        highlight=False,
    )


def predict(
    sources: Annotated[
        list[Path],
        typer.Argument(
            help="Model folders (blended by --weights) or one pickle.", show_default=False
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write (id,prediction).")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Rows to predict (default: <data-dir>/<version>/live.parquet)."
        ),
    ] = None,
    benchmark_data: Annotated[
        Path | None,
        typer.Option(
            "--benchmark-data",
            help="Benchmark models of those rows (default: <data>_benchmark_models.parquet).",
        ),
    ] = None,
    weights: WeightsOption = None,
    neutralize_features: NeutralizeOption = None,
    neutralize_proportion: ProportionOption = 1.0,
    runtime: RuntimeOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    json_out: JsonOption = False,
) -> None:
    """Write predictions in Numerai's submission format, from model folders or a pickle."""
    from nx.engine.errors import ExportError
    from nx.engine.export import predict_models, predict_pickle

    pickles = [s for s in sources if s.is_file()]
    if pickles:
        if len(sources) > 1:
            raise ExportError("pass one pickle, or model folders only")
        result = predict_pickle(
            pickles[0],
            output,
            data=data,
            benchmark_data=benchmark_data,
            runtime=runtime,
            data_dir=data_dir,
        )
    else:
        result = predict_models(
            list(sources),
            output,
            data=data,
            benchmark_data=benchmark_data,
            weights=weights,
            neutralize_features=neutralize_features,
            neutralize_proportion=neutralize_proportion,
            data_dir=data_dir,
        )
    document = {
        "output": str(result.output),
        "rows": result.rows,
        "eras": result.eras,
        "source": result.source,
    }
    if json_out:
        print_json(document)
    else:
        err_console.print(
            f"Wrote {result.rows} predictions ({result.eras} era(s)) to {result.output}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``runtime``, ``export``, ``check-pickle`` and ``predict`` to the root app."""
    app.add_typer(runtime_app, name="runtime")
    app.command("export")(export)
    app.command("check-pickle")(check_pickle)
    app.command("predict")(predict)
