"""Shared pieces of the CLI: consoles, common options, rich progress, JSON output."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBar
from rich.text import Text

from nx.engine.paths import DATA_DIR_ENV
from nx.engine.paths import DEFAULT_DATA_DIR as DEFAULT_DATA_DIR  # re-exported
from nx.engine.paths import DEFAULT_DATA_VERSION as DEFAULT_DATA_VERSION  # re-exported
from nx.engine.progress import Progress, ProgressTask

# People read stderr; stdout is kept for machine-readable output (--json). No rich
# markup on nx's consoles: what they print (paths, names, error messages, table cells)
# is shown as is ("add a [model.params] table" keeps its brackets); styles are given
# with rich.text.Text.
err_console = Console(stderr=True, soft_wrap=True, markup=False)

# Set by a command whose process may end without freeing its memory object by
# object (see ``nx.cli.app.main``): only what it has written matters then.
_teardown = {"skip": False}


def skip_teardown() -> None:
    """Let this process end, once the command has returned, without Python's
    teardown: freeing millions of objects of a large read (3M ids) takes 0.1-0.3 s,
    for nothing. Only ``main`` (the installed ``nx``) honours it, after flushing."""
    _teardown["skip"] = True


def teardown_skipped() -> bool:
    return _teardown["skip"]


def print_error(message: str, *, label: str = "Error") -> None:
    """``label: message`` on stderr, label in bold red; ``message`` is printed as is
    (no rich markup: "add a [model.params] table" keeps its brackets)."""
    err_console.print(Text.assemble((f"{label}: ", "bold red"), message), highlight=False)


def print_warning(message: str) -> None:
    """``Warning: message`` on stderr, ``message`` as is (no markup)."""
    err_console.print(Text.assemble(("Warning: ", "yellow"), message), highlight=False)


def print_text(message: str, style: str = "", console: Console | None = None) -> None:
    """One line of user text on stderr (or ``console``), as is: no markup, no highlighting."""
    (console or err_console).print(Text(message, style=style), highlight=False)


def cell(value: object) -> Text:
    """A table cell showing ``value`` as is (ints with thousands separators)."""
    if value is None:
        return Text("")
    return Text(f"{value:,}" if isinstance(value, int) else str(value))


DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help=f"Data directory holding <version>/ folders (env {DATA_DIR_ENV}).",
    ),
]
DataVersionOption = Annotated[
    str, typer.Option("--data-version", help="Numerai data version, e.g. v5.2 or v5.3.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document to stdout and nothing else there.")
]


def table_console(width: int) -> Console:
    """err_console on a terminal; otherwise (logs, CI, pipes) a stderr console ``width``
    columns wide, so that wide tables keep one row per line."""
    if err_console.is_terminal:
        return err_console
    return Console(stderr=True, width=width, markup=False)


class _RichTask(ProgressTask):
    def __init__(self, bar: RichBar, task_id: int) -> None:
        self._bar, self._id = bar, task_id

    def advance(self, amount: float = 1) -> None:
        self._bar.advance(self._id, amount)

    def update(self, *, total: float | None = None, completed: float | None = None) -> None:
        self._bar.update(self._id, total=total, completed=completed)


class RichProgress(Progress):
    """Progress bars with elapsed time and ETA on stderr; silent when ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        if self.quiet:
            yield ProgressTask()
            return
        bar = RichBar(
            TextColumn("{task.description}", style="progress.description", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        with bar:
            yield _RichTask(bar, bar.add_task(description, total=total))

    def warn(self, message: str) -> None:
        print_warning(message)


def command_progress(json_out: bool) -> RichProgress:
    """Bars for people watching a terminal; ``--json``, logs and pipes get the result alone."""
    return RichProgress(quiet=json_out or not err_console.is_terminal)


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(document: Any) -> None:
    """Write exactly one JSON document (NaN as null) to stdout."""
    sys.stdout.write(json.dumps(_json_safe(document), indent=2) + "\n")
    sys.stdout.flush()
