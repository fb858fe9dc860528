"""``nx sweep SWEEP.toml``: generate configs from a base config, run them, rank them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from nx.cli.common import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    JsonOption,
    err_console,
    print_json,
    print_warning,
    table_console,
)

MAX_EXIT = 100  # exit status = failed configs, capped so it never wraps past 255
TABLE_WIDTH = 130


class _Bar:
    """One rich bar for the whole sweep: done / running / failed, elapsed, ETA (it is a
    nx.engine.sweep.SweepProgress, duck-typed so that the CLI starts without the engine)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bar = None
        self._task = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int, skipped: int) -> None:
        if skipped:
            self.note(
                f"{skipped} of {total} configs are complete; skipping them (--rerun redoes them)"
            )
        if self.quiet:
            return
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("Sweep"),
            BarColumn(),
            TextColumn(
                "{task.fields[done]}/{task.total:.0f} done · {task.fields[running]} running · {task.fields[failed]} failed"
            ),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            "sweep", total=total, completed=skipped, done=skipped, running=0, failed=0
        )

    def update(self, *, done: int, running: int, failed: int) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task, completed=done + failed, done=done, running=running, failed=failed
            )

    def dashboard(self, link: str) -> None:
        self.note(f"Dask dashboard: {link}")

    def warn(self, message: str) -> None:
        print_warning(message)

    def note(self, message: str) -> None:
        if not self.quiet:
            err_console.print(message, highlight=False)


def _row(outcome, rank: int | None, round_label: str | None) -> dict:
    metrics = outcome.metrics
    return {
        "rank": rank,
        "name": outcome.name,
        "round": round_label,
        "status": outcome.status,
        "error": outcome.error,
        "seconds": outcome.seconds,
        "corr_mean": (metrics.get("corr") or {}).get("mean"),
        "corr_sharpe": (metrics.get("corr") or {}).get("sharpe"),
        "bmc_mean": (metrics.get("bmc") or {}).get("mean"),
        "bmc_last_200_eras_mean": (metrics.get("bmc_last_200_eras") or {}).get("mean"),
        "results": str(outcome.results_path) if outcome.results_path else None,
    }


def _render(report, rows: list[dict]) -> None:
    from rich.table import Table

    def number(value) -> str:
        return "-" if value is None or value != value else f"{value:.4f}"

    title = f"Sweep {report.sweep.name}" + (
        f" (round {report.sweep.round})" if report.sweep.round else ""
    )
    table = Table(title=title + " by BMC mean")
    for column in ("#", "config", "bmc mean", "bmc last 200", "corr mean", "corr sharpe", "status"):
        table.add_column(column, justify="left" if column in ("config", "status") else "right")
    for row in rows:
        status = Text("failed", style="red") if row["status"] == "failed" else row["status"]
        table.add_row(
            "" if row["rank"] is None else str(row["rank"]),
            row["name"],
            number(row["bmc_mean"]),
            number(row["bmc_last_200_eras_mean"]),
            number(row["corr_mean"]),
            number(row["corr_sharpe"]),
            status,
        )
    table_console(TABLE_WIDTH).print(table)
    for row in rows:
        if row["status"] == "failed":
            err_console.print(
                Text.assemble((f"{row['name']} failed: ", "red"), row["error"]), highlight=False
            )
    err_console.print(
        f"Outputs: {report.output_dir} (record: {report.record_path})", highlight=False
    )


def sweep(
    sweep_file: Annotated[
        Path,
        typer.Argument(
            # typer reads help as rich markup, where [grid] would be a style
            help=escape("The sweep file (TOML): base config, [grid] and/or [[list]]."),
            show_default=False,
        ),
    ],
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Experiment dir (default: the sweep's output_dir, else the base config's, else ./experiments).",
        ),
    ] = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Run on a local Dask cluster of N worker processes (127.0.0.1)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run on an existing Dask cluster (tcp://HOST:PORT); the data dir must be the same path on every worker.",
        ),
    ] = None,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Run every config again, complete or not.")
    ] = False,
    final: Annotated[
        bool, typer.Option("--final", help="Also fit and save each config's final model.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Run every config of a sweep (skipping complete ones), then rank them by BMC mean.

    Exit status: 0 when every config has results, else the number of failed configs
    (2 also marks a sweep that cannot start: bad sweep file, config or data).
    """
    from nx.engine.errors import SweepError
    from nx.engine.sweep import dask_client, load_sweep, run_sweep
    from nx.engine.sweep.runner import check_sweep, check_workers_see

    if workers is not None and scheduler is not None:
        raise SweepError("--workers and --scheduler exclude each other; pick one")
    plan = load_sweep(sweep_file, output_dir)
    check_sweep(plan, data_dir)  # before any cluster starts
    with _Bar(quiet=json_out) as bar:
        if workers is None and scheduler is None:
            report = run_sweep(plan, data_dir=data_dir, rerun=rerun, final=final, progress=bar)
        else:
            with dask_client(workers, scheduler) as client:
                if scheduler is not None:
                    check_workers_see(client, data_dir, plan)
                report = run_sweep(
                    plan, data_dir=data_dir, rerun=rerun, final=final, executor=client, progress=bar
                )
    ranked = report.leaderboard()
    rows, rank = [], 0
    for outcome in ranked:
        rank += outcome.status != "failed"
        rows.append(_row(outcome, rank if outcome.status != "failed" else None, plan.round))
    failed = len(report.failed)
    if json_out:
        print_json(
            {
                "sweep": str(plan.source),
                "round": plan.round,
                "output_dir": str(report.output_dir),
                "record": str(report.record_path),
                "failed": failed,
                "configs": rows,
            }
        )
    else:
        _render(report, rows)
    if failed:
        raise typer.Exit(code=min(failed, MAX_EXIT))


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to the root app."""
    app.command("sweep")(sweep)
