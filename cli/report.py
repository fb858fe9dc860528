"""``nx show``, ``nx plot benchmarks``, ``nx report``, ``nx blend``, ``nx neutralize``:
looking at an experiment and making runs from runs (thin layer over nx.engine.report)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_DATA_VERSION,
    DataDirOption,
    DataVersionOption,
    JsonOption,
    command_progress,
    err_console,
    print_json,
    table_console,
)

TABLE_WIDTH = 200

ExperimentDir = Annotated[
    Path,
    typer.Argument(help="Experiment dir (results/, predictions/, configs/ of `nx train`).",
                   show_default=False),
]  # fmt: skip
BenchmarkDataOption = Annotated[
    Path | None,
    typer.Option(
        "--benchmark-data",
        help="Benchmark models file for BMC (default: the file the results name, else "
        "<data-dir>/<version>/full_benchmark_models.parquet).",
    ),
]
BenchmarkModelOption = Annotated[
    str | None,
    typer.Option(
        "--benchmark-model",
        help="Benchmark column (default: the results' benchmark.model, else v52_lgbm_ender20); "
        "a unique column ending in _NAME also matches.",
    ),
]
PredColOption = Annotated[str, typer.Option("--pred-col", help="Prediction column.")]
DarkOption = Annotated[bool, typer.Option("--dark", help="Dark theme for figures.")]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace predictions/results of the same name.")
]


def _start_era(value: str | None) -> int | None:
    if value is None:
        return None
    from nx.engine.report.curves import era_number

    number = era_number(value)
    if number is None:
        raise typer.BadParameter(f"{value!r} is not an era number (e.g. 575 or 0575)")
    return number


def _fmt(value, digits: int = 4, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _show_table(result) -> None:
    from rich.table import Table

    base = f", base {result.base}" if result.base else ""
    start = f", eras from {result.start_era}" if result.start_era is not None else ""
    table = Table(
        title=f"{result.experiment_dir}: {len(result.rows)} runs, sorted by {result.sort}"
        f"{base}{start}",
        title_justify="left",
    )
    headers = [
        "#", "run", "model", "bmc mean", "bmc sharpe", "bmc max dd", "corr w/ bench",
        "bmc200 mean", "bmc200 sharpe", "bmc200 max dd", "corr mean", "corr sharpe",
    ]  # fmt: skip
    if result.base:
        headers += ["Δ bmc", "Δ bmc200", "Δ corr"]
    for h in headers:
        table.add_column(
            h, justify="left" if h in ("run", "model") else "right", no_wrap=h in ("run", "model")
        )
    rank = 0
    for row in result.rows:
        if not row["base"]:
            rank += 1
        bmc, last, corr = row["bmc"], row["bmc_last_200_eras"], row["corr"]
        cells = [
            "base" if row["base"] else str(rank), row["name"], row["model_type"] or "-",
            _fmt(bmc["mean"]), _fmt(bmc["sharpe"], 3), _fmt(bmc["max_drawdown"]),
            _fmt(bmc["avg_corr_with_benchmark"], 3), _fmt(last["mean"]), _fmt(last["sharpe"], 3),
            _fmt(last["max_drawdown"]), _fmt(corr["mean"]), _fmt(corr["sharpe"], 3),
        ]  # fmt: skip
        if result.base:
            delta = row["delta"]
            cells += [
                "" if row["base"] else _fmt(delta[k], signed=True)
                for k in ("bmc_mean", "bmc_last_200_eras_mean", "corr_mean")
            ]
        table.add_row(*cells)
    console = table_console(TABLE_WIDTH)
    console.print(table)
    sources = {row["source"] for row in result.rows}
    if result.benchmark is not None and "predictions" in sources:
        console.print(
            Text(
                f"computed from predictions; BMC against {result.benchmark.column} "
                f"from {result.benchmark.path}",
                style="dim",
            ),
            highlight=False,
        )
    if result.plot_path is not None:
        console.print(f"Saved plot to {result.plot_path}", highlight=False)


def show(
    experiment_dir: ExperimentDir,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Runs to show (default: every results/*.json).", show_default=False),
    ] = None,
    base: Annotated[
        str,
        typer.Option(
            "--base",
            help="Base run for deltas and the plot: a run name, 'benchmark' (the benchmark "
            "model scored on the runs' rows) or 'none'.",
        ),
    ] = "benchmark",
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="bmc200 (BMC mean, last 200 eras; BMC mean when absent), bmc, corr, or "
            "sharpe (BMC sharpe).",
        ),
    ] = "bmc200",
    start_era: Annotated[
        str | None,
        typer.Option(
            "--start-era",
            help="Only eras numbered this or later (e.g. 575): the table is computed from "
            "the predictions over those eras.",
        ),
    ] = None,
    plot: Annotated[
        bool, typer.Option("--plot", help="Write the standard three-panel PNG under plots/.")
    ] = False,
    dark: DarkOption = False,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    benchmark_data: BenchmarkDataOption = None,
    benchmark_model: BenchmarkModelOption = None,
    baselines_dir: Annotated[
        Path | None,
        typer.Option("--baselines-dir", help="Another experiment dir to find the base run in."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Leaderboard of an experiment's runs (deltas against a base) and the standard plot."""
    from nx.engine.report.show import show_experiment

    progress = command_progress(json_out)
    result = show_experiment(
        experiment_dir,
        names or None,
        base=None if base.lower() == "none" else base,
        sort=sort,
        start_era=_start_era(start_era),
        plot=plot,
        dark=dark,
        data_dir=data_dir,
        benchmark_data=benchmark_data,
        benchmark_model=benchmark_model,
        baselines_dir=baselines_dir,
        progress=progress,
    )
    if json_out:
        print_json(_show_document(result))
    else:
        _show_table(result)


def _show_document(result) -> dict:
    plot = None
    if result.plot_path is not None:
        width, height = result.figure.get_size_inches() * result.figure.dpi
        plot = {
            "path": str(result.plot_path),
            "panels": len(result.figure.axes),
            "width_px": round(width),
            "height_px": round(height),
        }
    return {
        "experiment_dir": str(result.experiment_dir),
        "base": result.base,
        "sort": result.sort,
        "start_era": result.start_era,
        "benchmark": {"column": result.benchmark.column, "file": str(result.benchmark.path)}
        if result.benchmark
        else None,
        "rows": result.rows,
        "plot": plot,
    }


plot_app = typer.Typer(help="Figures from the data dir's files.", no_args_is_help=True)


@plot_app.command("benchmarks")
def plot_benchmarks(
    targets: Annotated[
        list[str] | None,
        typer.Option(
            "--targets",
            help="Targets to correlate with (repeat; default target_ender_20 and "
            "target_cyrusd_20); a unique column containing the name also matches.",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--models", help="Benchmark columns (repeat; default: all of them)."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Model the differences are taken from (default: the version's default benchmark, else the first).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="PNG path (default plots/benchmark_corrs_<targets>.png)."),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    dark: DarkOption = False,
    json_out: JsonOption = False,
) -> None:
    """Cumulative per-era corr of benchmark models with targets, and differences from one."""
    from nx.engine.report.benchmarks import plot_benchmark_corrs

    progress = command_progress(json_out)
    result = plot_benchmark_corrs(
        data_dir, data_version, targets or None, models or None, reference, output, dark, progress
    )
    if json_out:
        print_json(result)
    else:
        err_console.print(f"Saved plot to {result['path']}", highlight=False)


def report(
    experiment_dir: ExperimentDir,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    benchmark_data: BenchmarkDataOption = None,
    benchmark_model: BenchmarkModelOption = None,
    dark: DarkOption = False,
    json_out: JsonOption = False,
) -> None:
    """Write experiment.md (keeping what you wrote) and a self-contained report.html."""
    from nx.engine.report.document import write_report

    progress = command_progress(json_out)
    result = write_report(
        experiment_dir, data_dir, benchmark_data, benchmark_model, dark, progress=progress
    )
    if json_out:
        print_json(result)
    else:
        for label in ("markdown", "html", "plot"):
            if result.get(label):
                err_console.print(f"{label + ':':10} {result[label]}", highlight=False)


def _weights(values: list[str]) -> list[float]:
    out = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                raise typer.BadParameter(
                    f"{part!r} is not a number", param_hint="--weights"
                ) from None
    return out


def blend(
    predictions: Annotated[
        list[Path], typer.Argument(help="Predictions files to blend.", show_default=False)
    ],
    weights: Annotated[
        list[str],
        typer.Option("--weights", help="One weight per file: --weights 0.6,0.4 or repeated."),
    ],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Experiment dir to write the blend into.")
    ],
    name: Annotated[str, typer.Option("--name", help="Name of the blended run.")],
    pred_col: PredColOption = "prediction",
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    benchmark_data: BenchmarkDataOption = None,
    benchmark_model: BenchmarkModelOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Rank-gauss blend per era (the reference's blend_rank_gauss), written and scored as a run."""
    from nx.engine.report.blend import blend_predictions

    progress = command_progress(json_out)
    document = blend_predictions(
        predictions, _weights(weights), output_dir, name, pred_col, data_dir, data_version,
        benchmark_data, benchmark_model, overwrite, progress,
    )  # fmt: skip
    _run_output(document, json_out)


def neutralize(
    predictions: Annotated[Path, typer.Argument(help="Predictions file.", show_default=False)],
    features: Annotated[
        str, typer.Option("--features", help="Feature set to neutralize against (small, ...).")
    ],
    proportion: Annotated[
        float, typer.Option("--proportion", help="Share of the exposure removed, in [0, 1].")
    ] = 1.0,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Experiment dir (default: the one holding the file)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Run name (default <stem>_neutral_<set>_<percent>)."),
    ] = None,
    pred_col: PredColOption = "prediction",
    data: Annotated[
        Path | None, typer.Option("--data", help="Data file with the features (default full).")
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    benchmark_data: BenchmarkDataOption = None,
    benchmark_model: BenchmarkModelOption = None,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Neutralize predictions per era against a feature set, written and scored as a run."""
    from nx.engine.report.blend import neutralize_predictions

    progress = command_progress(json_out)
    document = neutralize_predictions(
        predictions, features, proportion, output_dir, name, pred_col, data, data_dir,
        data_version, benchmark_data, benchmark_model, overwrite, progress,
    )  # fmt: skip
    _run_output(document, json_out)


def _run_output(document: dict, json_out: bool) -> None:
    if json_out:
        print_json(document)
        return
    metrics = document["metrics"]
    line = ", ".join(
        f"{section} mean {_fmt(metrics[section]['mean'])}"
        for section in ("corr", "bmc", "bmc_last_200_eras")
        if section in metrics
    )
    err_console.print(line, highlight=False)
    for label, path in document["paths"].items():
        err_console.print(f"{label + ':':13} {path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``show``, ``plot``, ``report``, ``blend`` and ``neutralize`` to the root app."""
    app.command("show")(show)
    app.add_typer(plot_app, name="plot")
    app.command("report")(report)
    app.command("blend")(blend)
    app.command("neutralize")(neutralize)
