"""``nx score PREDICTIONS``: Numerai's per-era scores of a predictions file.

Thin: options -> :mod:`nx.engine.metrics.io` (read and join) -> :func:`nx.engine.metrics.score`
-> a rich table on stderr, or one JSON document on stdout with ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DEFAULT_DATA_VERSION,
    DataDirOption,
    DataVersionOption,
    JsonOption,
    cell,
    command_progress,
    print_json,
    print_text,
    skip_teardown,
    table_console,
)

INPUTS = "Inputs"
SCORES = "Scores"
SECTIONS = ("corr", "bmc", "bmc_last_200_eras", "mmc", "fnc")
TABLE_WIDTH = 130  # one row per score even when stderr is not a terminal


def score_command(
    predictions: Annotated[
        Path,
        typer.Argument(
            help="Predictions file (parquet or CSV) with an id column and prediction columns.",
            show_default=False,
        ),
    ],
    pred_col: Annotated[
        list[str] | None,
        typer.Option(
            "--pred-col",
            help="Prediction column to score (repeatable). Default: 'prediction', else every "
            "column that is not id/era/target/feature.",
            rich_help_panel=INPUTS,
        ),
    ] = None,
    target: Annotated[
        str, typer.Option("--target", help="Target column.", rich_help_panel=INPUTS)
    ] = "target",
    era_col: Annotated[
        str,
        typer.Option("--era-col", help="Era column ('date' for Signals).", rich_help_panel=INPUTS),
    ] = "era",
    id_col: Annotated[
        str,
        typer.Option(
            "--id-col",
            help="Id column used for joins ('numerai_ticker' for Signals, 'symbol' for Crypto).",
            rich_help_panel=INPUTS,
        ),
    ] = "id",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="File to join era/target/features from by id. Default: "
            "<data-dir>/<version>/full.parquet, else validation.parquet.",
            rich_help_panel=INPUTS,
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    benchmark_data: Annotated[
        Path | None,
        typer.Option(
            "--benchmark-data",
            help="Benchmark models file for BMC. Default: <data-dir>/<version>/"
            "full_benchmark_models.parquet (BMC is skipped when that is missing).",
            rich_help_panel=SCORES,
        ),
    ] = None,
    benchmark_model: Annotated[
        str | None,
        typer.Option(
            "--benchmark-model",
            help="Benchmark column for BMC; a unique column ending in _NAME also matches. "
            "Default: v52_lgbm_ender20 (v53_... for v5.3).",
            rich_help_panel=SCORES,
        ),
    ] = None,
    meta_model: Annotated[
        Path | None,
        typer.Option(
            "--meta-model",
            help="Meta model file (id + numerai_meta_model) for MMC.",
            rich_help_panel=SCORES,
        ),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="Feature set for FNC and feature exposure: small, medium, all or a set "
            "name from features.json (features are read from --data).",
            rich_help_panel=SCORES,
        ),
    ] = None,
    max_nan_fraction: Annotated[
        float,
        typer.Option(
            "--max-nan-fraction",
            min=0.0,
            max=0.99,
            help="Largest share of an era's rows a score may drop for missing values "
            "(numerai-tools: 0.2).",
            rich_help_panel=SCORES,
        ),
    ] = 0.2,
    per_era: Annotated[
        Path | None,
        typer.Option(
            "--per-era",
            help="Write the per-era scores (era, column, one column per metric) to this "
            "file: parquet (.parquet) or CSV (.csv).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Score predictions per era like numerai-tools: corr, BMC, MMC, FNC, feature exposure."""
    from nx.engine.metrics.io import (
        ScoreInputs,
        check_per_era_path,
        load_score_frame,
        score_document,
        score_loaded,
        warm_kernels_in_background,
        write_per_era,
    )

    if per_era is not None:
        check_per_era_path(per_era)  # before the work, not after it
    # numba's start-up runs on a thread while the files are read
    warming = warm_kernels_in_background()

    progress = command_progress(json_output)
    inputs = ScoreInputs(
        predictions=predictions,
        pred_cols=list(pred_col or []),
        target_col=target,
        era_col=era_col,
        id_col=id_col,
        data=data,
        data_dir=data_dir,
        data_version=data_version,
        benchmark_data=benchmark_data,
        benchmark_model=benchmark_model,
        meta_model=meta_model,
        features=features,
    )
    try:
        scored = load_score_frame(inputs, progress)
    except Exception:  # a user error: no numba work left running behind
        warming.join()
        raise
    # (Ctrl-C and SIGTERM, KeyboardInterrupts, end now, not after a cold cache's
    # compile of about 10 s: the warm-up thread is a daemon and its child process
    # stops with this one)
    warming.join()
    table, summary = score_loaded(scored, max_nan_fraction=max_nan_fraction, progress=progress)
    if per_era is not None:
        write_per_era(table, per_era)
    skip_teardown()  # everything is written or printed below, from memory already read
    n_eras = table["era"].n_unique()
    if json_output:
        print_json(score_document(scored, summary, n_eras))
        return
    _render(summary, scored.frame.height, n_eras, scored.notes, per_era)


def _render(summary: dict, rows: int, eras: int, notes: list[str], per_era: Path | None) -> None:
    from rich.table import Table

    console = table_console(TABLE_WIDTH)
    table = Table(title=f"nx score: {rows} rows, {eras} eras", title_justify="left")
    headers = ("column", "score", "mean", "std", "sharpe", "max drawdown", "eras", "NaN eras")
    for name in (*headers, "corr w/ benchmark"):
        table.add_column(name, justify="left" if name in ("column", "score") else "right")
    for col, sections in summary.items():
        for section in SECTIONS:
            if section not in sections:
                continue
            s = sections[section]
            table.add_row(
                cell(col),
                section,
                _fmt(s["mean"]),
                _fmt(s["std"]),
                _fmt(s["sharpe"], 3),
                _fmt(s["max_drawdown"]),
                str(s["eras"]),
                str(s["nan_eras"]),
                _fmt(s["avg_corr_with_benchmark"]) if "avg_corr_with_benchmark" in s else "",
            )
        if "feature_exposure" in sections:
            fe = sections["feature_exposure"]
            table.add_row(
                cell(col),
                "max feature exposure",
                _fmt(fe["mean_max"]),
                f"max {_fmt(fe['max_max'])}",
                "",
                "",
                str(fe["eras"]),
                str(fe["nan_eras"]),
                "",
            )
    console.print(table)
    for note in notes:
        print_text(note, style="dim", console=console)
    if per_era is not None:
        print_text(f"Per-era scores written to {per_era}", console=console)


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def register(app: typer.Typer) -> None:
    """Add ``nx score`` to the root app."""
    app.command("score")(score_command)
