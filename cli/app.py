"""The ``nx`` command: a thin Typer layer over :mod:`nx.engine`.

Every :class:`~nx.engine.errors.NxError` raised by a command becomes one red line
on stderr and exit code 2; ``nx --debug ...`` (or ``NX_DEBUG=1``) shows the
traceback as well. Ctrl-C (SIGINT) and SIGTERM end a command through the same
clean-up as an error (temporary files removed) with one line and exit code 130
(SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback

import click
import typer
from typer.core import TyperGroup

from nx.cli import data, export, mcp, metrics, numerai, report, sweep, train
from nx.cli.common import print_error, print_text, teardown_skipped
from nx.engine import __version__
from nx.engine.errors import NxError
from nx.engine.paths import remove_pending_temp_files

try:  # typer >= 0.25 carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer parses with click itself
    from click.exceptions import ClickException, NoArgsIsHelpError


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every clean-up (``finally``) runs."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _debug_enabled(ctx: click.Context) -> bool:
    # the root context is the one NxGroup.invoke gets: its obj is set by _root below
    root = ctx.find_root()
    flag = isinstance(root.obj, dict) and bool(root.obj.get("debug"))
    return flag or os.environ.get("NX_DEBUG", "") not in ("", "0")


class NxGroup(TyperGroup):
    """Maps user errors to a one-line message and exit code 2 (or the error's own)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Usage errors (a bad option value, an unknown option) become one line too,
        instead of click's usage box."""
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as error:
            error.show()
            result = error.exit_code
        except ClickException as error:
            message = " ".join(error.format_message().split())
            context = getattr(error, "ctx", None)
            hint = f"; see `{context.command_path} --help`" if context is not None else ""
            print_error(f"{message}{hint}")
            result = error.exit_code
        except typer.Abort:
            print_error("aborted", label="Interrupted")
            result = 130
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NxError as error:
            # an error may carry lines to show first (e.g. a failed upload's run log) and
            # its own exit code (documented where it is raised); otherwise exit 2
            for line in getattr(error, "log_lines", ()):
                print_text(f"  {line}", style="dim")
            if _debug_enabled(ctx):
                traceback.print_exc(file=sys.stderr)
            print_error(" ".join(str(error).split()))
            raise typer.Exit(code=getattr(error, "exit_code", 2)) from None
        except KeyboardInterrupt as interrupt:
            remove_pending_temp_files()
            if _debug_enabled(ctx):
                traceback.print_exc(file=sys.stderr)
            terminated = isinstance(interrupt, Terminated)
            print_error(
                "files being written were removed; run the command again to finish",
                label="Terminated (SIGTERM)" if terminated else "Interrupted (Ctrl-C)",
            )
            raise typer.Exit(code=143 if terminated else 130) from None


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
numerai.register(app)
mcp.register(app)
train.register(app)
export.register(app)
report.register(app)
sweep.register(app)


def main() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except SystemExit as done:
        if not teardown_skipped() or not isinstance(done.code, int | None):
            raise
        # the command asked to skip the interpreter's teardown (see skip_teardown):
        # flush what it wrote, then end the process at once with its exit code
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to deliver
                pass
        os._exit(done.code or 0)
