"""``nx train`` (era-CV training from configs) and ``nx demo`` (the whole loop on synthetic data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    RichProgress,
    cell,
    err_console,
    print_text,
)

DEMO_CONFIG = "baseline.toml"

OutputDirOption = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        help="Experiment directory for predictions/, results/, configs/, models/ "
        "(default: the config's output.output_dir, else ./experiments).",
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an earlier run's outputs of the same name (default: keep them and stop).",
    ),
]
FinalOption = Annotated[
    bool,
    typer.Option(
        "--final",
        help="Also fit one model on every era and save it under <output-dir>/models/<name>/.",
    ),
]


def _summary_row(result) -> dict:
    metrics = result.metrics
    return {
        "name": result.name,
        "corr_mean": metrics.get("corr", {}).get("mean"),
        "corr_sharpe": metrics.get("corr", {}).get("sharpe"),
        "bmc_mean": metrics.get("bmc", {}).get("mean"),
        "bmc_last_200_eras_mean": metrics.get("bmc_last_200_eras", {}).get("mean"),
        "predictions": str(result.predictions_path) if result.predictions_path else None,
        "results": str(result.results_path),
        "config": str(result.config_path),
        "model_dir": str(result.model_dir) if result.model_dir else None,
        "metrics": metrics,
    }


def _render(rows: list[dict]) -> None:
    from rich.table import Table

    def number(value) -> str:
        return "-" if value is None or value != value else f"{value:.4f}"

    table = Table(title="Out-of-fold results")
    for column in ("config", "corr mean", "corr sharpe", "bmc mean", "bmc last 200"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for row in rows:
        table.add_row(
            cell(row["name"]),
            number(row["corr_mean"]),
            number(row["corr_sharpe"]),
            number(row["bmc_mean"]),
            number(row["bmc_last_200_eras_mean"]),
        )
    err_console.print(table)
    for row in rows:
        print_text(row["name"], style="bold")
        for label in ("predictions", "results", "config", "model_dir"):
            if row[label]:
                print_text(f"  {label + ':':13} {row[label]}")


def _train_all(
    configs,
    data_dir: Path,
    output_dir: Path | None,
    final: bool,
    json_out: bool,
    overwrite: bool = False,
):
    from nx.engine.train import train_configs

    return train_configs(
        configs,
        data_dir=data_dir,
        output_dir=output_dir,
        final=final,
        overwrite=overwrite,
        progress=RichProgress(quiet=json_out),
    )


def train(
    configs: Annotated[
        list[Path],
        typer.Argument(
            help="Config files (.toml, .py defining CONFIG, or .json).", show_default=False
        ),
    ],
    output_dir: OutputDirOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    final: FinalOption = False,
    overwrite: OverwriteOption = False,
    json_out: JsonOption = False,
) -> None:
    """Train each config with era-wise CV, score its out-of-fold predictions, write the outputs."""
    from nx.cli.common import print_json
    from nx.engine.train.config import load_config

    loaded = [load_config(path) for path in configs]
    results = _train_all(loaded, data_dir, output_dir, final, json_out, overwrite)
    rows = [_summary_row(result) for result in results]
    if json_out:
        print_json({"configs": rows})
    else:
        _render(rows)


def demo(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Where the demo experiment is written.")
    ] = Path("experiments/demo"),
    json_out: JsonOption = False,
) -> None:
    """Build the small synthetic dataset if absent, train the shipped baseline with CV, score it."""
    import tomllib
    from importlib.resources import files

    from nx.cli.common import print_json
    from nx.engine.data.build import build_data
    from nx.engine.train.config import parse_config

    progress = RichProgress(quiet=json_out)
    build_data(data_dir, synthetic=True, scale="small", progress=progress)
    resource = files("nx.engine.train") / "configs" / DEMO_CONFIG
    config = parse_config(tomllib.loads(resource.read_text(encoding="utf-8")), Path(DEMO_CONFIG))
    results = _train_all([config], data_dir, output_dir, False, json_out, overwrite=True)
    rows = [_summary_row(result) for result in results]
    if json_out:
        print_json({"data_dir": str(data_dir), "configs": rows})
    else:
        print_text(f"Data: {data_dir}")
        _render(rows)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``demo`` to the root app."""
    app.command("train")(train)
    app.command("demo")(demo)
