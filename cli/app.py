"""The ``nx`` command: a thin Typer layer over :mod:`nx.engine`.

Every :class:`~nx.engine.errors.NxError` raised by a command becomes one red line
on stderr and exit code 2; ``nx --debug ...`` (or ``NX_DEBUG=1``) shows the
traceback instead.
"""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer
from typer.core import TyperGroup

from nx.cli import data, metrics, sweep, train
from nx.cli.common import err_console
from nx.engine import __version__
from nx.engine.errors import NxError


def _debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    flag = bool(root and isinstance(root.obj, dict) and root.obj.get("debug"))
    return flag or os.environ.get("NX_DEBUG", "") not in ("", "0")


class NxGroup(TyperGroup):
    """Maps user errors to a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NxError as error:
            if _debug_enabled():
                traceback.print_exc(file=sys.stderr)
            message = " ".join(str(error).split())
            err_console.print(f"[bold red]Error:[/bold red] {message}", highlight=False)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]Interrupted.[/bold red]")
            raise typer.Exit(code=130) from None


app = typer.Typer(
    cls=NxGroup,
    name="nx",
    help="nx: a high-performance research engine for the Numerai tournament.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.obj = {"debug": debug}


data.register(app)
metrics.register(app)
train.register(app)
sweep.register(app)


def main() -> None:
    app()
