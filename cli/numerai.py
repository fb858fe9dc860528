"""``nx numerai ...``: Numerai's API from the command line (account, models, uploads,
submissions, scores), a thin layer over :mod:`nx.engine.numerai`.

Every command prints a table on stderr, or one JSON document on stdout with ``--json``.
Errors are one line and exit code 2, except a model upload that Numerai's validation
rejects: its log lines, then one line, and exit code 3 (``VALIDATION_FAILED_EXIT``).
The API secret is redacted from every message, traceback included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.text import Text
from typer.core import TyperGroup

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
from nx.engine.errors import ConfigError

VALIDATION_FAILED_EXIT = 3
TABLE_WIDTH = 140

TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File holding PUBLIC_ID$SECRET_KEY (mode 600). Default: NUMERAI_PUBLIC_ID + "
        "NUMERAI_SECRET_KEY, else NUMERAI_MCP_AUTH.",
    ),
]
ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Name of your model slot on Numerai.")
]
TournamentOption = Annotated[
    int, typer.Option("--tournament", help="8 Classic, 11 Signals, 12 Crypto.")
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1, help="Seconds to wait for Numerai's verdict."),
]
PollOption = Annotated[
    float,
    typer.Option("--poll-interval", min=0, help="Seconds between two status requests."),
]


def _redact_chain(error: BaseException) -> None:
    """Redact the secret from an exception's arguments and from those it was raised from."""
    from nx.engine.numerai.credentials import redact

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        except (AttributeError, TypeError):
            pass
        current = current.__cause__ or current.__context__


class NumeraiGroup(TyperGroup):
    """Redacts the secret from every error before the root command reports it."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as error:
            _redact_chain(error)
            raise


app = typer.Typer(
    cls=NumeraiGroup,
    help="Talk to Numerai: account, models, model uploads, submissions, scores.",
    no_args_is_help=True,
)


def _client(token_file: Path | None, *, required: bool = True):
    from nx.engine.numerai.client import NumeraiClient
    from nx.engine.numerai.credentials import find_credentials, load_credentials

    credentials = load_credentials(token_file) if required else find_credentials(token_file)
    return NumeraiClient(credentials)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    table_console(TABLE_WIDTH).print(table)


def _pairs(title: str, pairs: dict[str, Any]) -> None:
    _table(title, ["field", "value"], [[k, _cell(v)] for k, v in pairs.items()])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def _say(*parts: str | tuple[str, str]) -> None:
    """One line on stderr from plain strings and (text, style) pairs; no markup."""
    err_console.print(Text.assemble(*parts), highlight=False)


@app.command("whoami")
def whoami_command(token_file: TokenFileOption = None, json_out: JsonOption = False) -> None:
    """Show the account, the API key's name and its scopes (and which ones nx would need)."""
    from nx.engine.numerai import operations

    info = operations.whoami(_client(token_file))
    if json_out:
        print_json(info)
        return
    _pairs(
        "Numerai API key",
        {
            "account": info["account"],
            "token name": info["token_name"],
            "public id": info["public_id"],
            "scopes": info["scopes"],
            "credentials from": info["credentials_source"],
        },
    )
    for command, scope in info["missing_scopes"].items():
        _say(
            ("Note: ", "yellow"),
            f"`nx numerai {command}` needs the `{scope}` scope, which this "
            "key lacks; add it to a key at numer.ai/account",
        )


@app.command("models")
def models_command(
    tournament: Annotated[
        int | None, typer.Option("--tournament", help="Only this tournament (8, 11, 12).")
    ] = None,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """List your model slots (name, id, tournament)."""
    from nx.engine.numerai import operations

    models = operations.list_models(_client(token_file), tournament)
    if json_out:
        print_json({"models": models})
        return
    names = operations.TOURNAMENTS
    _table(
        f"Your models ({len(models)})",
        ["name", "tournament", "id"],
        [[m["name"], names.get(m["tournament"], m["tournament"]), m["id"]] for m in models],
    )


@app.command("create-model")
def create_model_command(
    name: Annotated[str, typer.Argument(help="Name of the new model slot.", show_default=False)],
    tournament: TournamentOption = 8,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a model slot (the name is checked first)."""
    from nx.engine.numerai import operations

    model = operations.create_model(_client(token_file), name, tournament)
    if json_out:
        print_json(model)
        return
    _say(
        "Created model ",
        (model["name"], "bold"),
        f" (id {model['id']}, tournament {tournament})",
    )


@app.command("upload")
def upload_command(
    pickle: Annotated[
        Path, typer.Argument(help="The model pickle (.pkl) to upload.", show_default=False)
    ],
    model: ModelOption,
    runtime: Annotated[
        str, typer.Option("--runtime", help="Python version of Numerai's runtime image.")
    ] = "3.12",
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for Numerai's validation.")
    ] = False,
    no_assign: Annotated[
        bool, typer.Option("--no-assign", help="Do not assign the pickle to the model slot.")
    ] = False,
    skip_check: Annotated[
        bool,
        typer.Option("--skip-check", help="Upload without running `nx check-pickle` first."),
    ] = False,
    timeout: TimeoutOption = 900.0,
    poll_interval: PollOption = 10.0,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a pickle, upload it as MODEL's model upload, wait for Numerai's validation and
    assign it (exit code 3 when the validation fails)."""
    from nx.engine.numerai.upload import upload_pickle

    result = upload_pickle(
        _client(token_file),
        pickle,
        model,
        runtime=runtime,
        data_version=data_version,
        wait=not no_wait,
        assign=not no_assign,
        check=not skip_check,
        data_dir=data_dir,
        timeout_s=timeout,
        poll_s=poll_interval,
        progress=command_progress(json_out),
    )
    if json_out:
        print_json(result)
        return
    _pairs(
        f"Model upload for {model}",
        {
            "pickle id": result["pickle_id"],
            "file": f"{result['filename']} ({result['bytes']:,} bytes)",
            "runtime": f"Python {runtime} (image {result['docker_image_id']})",
            "data version": f"{data_version} ({result['data_version_id']})",
            "checked by nx": "yes" if result["checked"] else "no (--skip-check)",
            "validation": result["validation_status"] or "not waited for (--no-wait)",
            "trigger": result["trigger_status"],
            "assigned to model": "yes" if result["assigned"] else "no (--no-assign)",
        },
    )


@app.command("status")
def status_command(
    model: Annotated[
        str | None, typer.Argument(help="Model name (default: every upload of the account).")
    ] = None,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Uploaded pickles with their validation and trigger status, and the latest run's log."""
    from nx.engine.numerai.upload import model_status

    status = model_status(_client(token_file), model)
    if json_out:
        print_json(status)
        return
    rows = []
    for upload in status["uploads"]:
        trigger = upload["latest_trigger"] or {}
        rows.append(
            [
                upload["filename"],
                upload["validation_status"],
                upload["trigger_status"] or trigger.get("status"),
                upload["inserted_at"],
                upload["id"],
            ]
        )
    title = f"Model uploads of {model}" if model else "Model uploads"
    _table(title, ["file", "validation", "trigger", "uploaded", "id"], rows)
    if status["latest_log"]:
        _say("Latest run's log:")
        for log in status["latest_log"]:
            _say(f"  {log.get('timestamp') or ''} {log.get('message') or ''}")


@app.command("submit")
def submit_command(
    predictions: Annotated[
        Path, typer.Argument(help="Live predictions (CSV or parquet).", show_default=False)
    ],
    model: ModelOption,
    tournament: TournamentOption = 8,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    data_version: DataVersionOption = DEFAULT_DATA_VERSION,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a live predictions file (ids = the live ids in the data dir when present, one
    prediction column, values in [0, 1], no NaN), then submit it for MODEL."""
    from nx.engine.numerai.upload import submit_predictions

    result = submit_predictions(
        _client(token_file),
        predictions,
        model,
        tournament=tournament,
        data_dir=data_dir,
        data_version=data_version,
        progress=command_progress(json_out),
    )
    if json_out:
        print_json(result)
        return
    check = result["validation"]
    live = check["live_ids_checked_against"] or "not checked (no live.parquet in the data dir)"
    _pairs(
        f"Submission for {model}",
        {
            "submission id": result["submission_id"],
            "file": result["filename"],
            "rows": f"{check['rows']:,}",
            "prediction column": check["prediction_col"],
            "range": f"{check['min']:.4f} .. {check['max']:.4f}",
            "live ids": live,
        },
    )


@app.command("diagnostics")
def diagnostics_command(
    predictions: Annotated[
        Path, typer.Argument(help="Validation predictions (CSV or parquet).", show_default=False)
    ],
    model: ModelOption,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for the result.")] = False,
    timeout: TimeoutOption = 900.0,
    poll_interval: PollOption = 10.0,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run Numerai's diagnostics on validation predictions and print the summary."""
    from nx.engine.numerai.upload import run_diagnostics

    result = run_diagnostics(
        _client(token_file),
        predictions,
        model,
        wait=not no_wait,
        timeout_s=timeout,
        poll_s=poll_interval,
        progress=command_progress(json_out),
    )
    if json_out:
        print_json(result)
        return
    summary = result["summary"] or {"status": "not waited for (--no-wait)"}
    _pairs(f"Diagnostics {result['diagnostics_id']} for {model}", summary)


@app.command("performance")
def performance_command(
    model: Annotated[str, typer.Argument(help="Model name.", show_default=False)],
    last: Annotated[
        int | None, typer.Option("--last", min=1, help="Only the last N rounds.")
    ] = None,
    tournament: TournamentOption = 8,
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Per-round scores of a model, newest round first."""
    from nx.engine.numerai import operations

    result = operations.performance(_client(token_file, required=False), model, last, tournament)
    if json_out:
        print_json(result)
        return
    names = sorted({name for r in result["rounds"] for name in r["scores"]})
    rows = [
        [r["round"], "yes" if r["resolved"] else "no", *(_cell(r["scores"].get(n)) for n in names)]
        for r in result["rounds"]
    ]
    _table(f"Round performance of {model}", ["round", "resolved", *names], rows)


@app.command("profile")
def profile_command(
    model: Annotated[str, typer.Argument(help="Model name.", show_default=False)],
    token_file: TokenFileOption = None,
    json_out: JsonOption = False,
) -> None:
    """A model's public profile (id, start date, stake)."""
    from nx.engine.numerai import operations

    result = operations.profile(_client(token_file, required=False), model)
    if json_out:
        print_json(result)
        return
    _pairs(f"Profile of {model}", result)


@app.command("leaderboard")
def leaderboard_command(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Number of rows.")] = 20,
    json_out: JsonOption = False,
) -> None:
    """The Classic leaderboard (rank, model, reputations, stake)."""
    from nx.engine.numerai import operations

    rows = operations.leaderboard(_client(None, required=False), limit)
    if json_out:
        print_json({"leaderboard": rows})
        return
    columns = ["rank", "username", "corr20Rep", "mmcRep", "bmcRep", "nmrStaked"]
    _table(
        f"Leaderboard (top {limit})",
        columns,
        [[_cell(row.get(c)) for c in columns] for row in rows],
    )


@app.command("round")
def round_command(tournament: TournamentOption = 8, json_out: JsonOption = False) -> None:
    """The current round: number, open and close times."""
    from nx.engine.numerai import operations

    current = operations.current_round(_client(None, required=False), tournament)
    if json_out:
        print_json({"round": current})
        return
    if current is None:
        _say("No round is open now.")
        return
    _pairs(f"Current round ({operations.TOURNAMENTS[tournament]})", current)


@app.command("tournaments")
def tournaments_command(json_out: JsonOption = False) -> None:
    """Numerai's tournaments (id and name)."""
    from nx.engine.numerai import operations

    rows = operations.tournaments(_client(None, required=False))
    if json_out:
        print_json({"tournaments": rows})
        return
    _table(
        "Tournaments",
        ["tournament", "name", "active"],
        [[r.get("tournament"), r.get("name"), r.get("active")] for r in rows],
    )


@app.command("datasets")
def datasets_command(
    round_number: Annotated[
        int | None, typer.Option("--round", help="Round number (default: the current one).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """The dataset files Numerai offers (Classic)."""
    from nx.engine.numerai import operations

    files = operations.datasets(_client(None, required=False), round_number)
    if json_out:
        print_json({"datasets": files})
        return
    _table(f"Datasets ({len(files)} files)", ["file"], [[f] for f in files])


def _variables(pairs: list[str]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--var {pair!r} must be KEY=VALUE (e.g. --var modelId=abc)")
        try:
            variables[key.strip()] = json.loads(value)
        except ValueError:
            variables[key.strip()] = value
    return variables


@app.command("graphql")
def graphql_command(
    query: Annotated[
        str,
        typer.Argument(help="A GraphQL document, or a file holding one.", show_default=False),
    ],
    var: Annotated[
        list[str] | None,
        typer.Option("--var", help="Variable KEY=VALUE (VALUE read as JSON when it parses)."),
    ] = None,
    token_file: TokenFileOption = None,
) -> None:
    """Send any GraphQL query to Numerai's API and print its data as JSON (stdout)."""
    from nx.engine.numerai import operations

    text = query
    if "{" not in query:
        path = Path(query)
        if not path.is_file():
            raise ConfigError(f"{query!r} is neither a GraphQL document nor a file; check it")
        text = path.read_text(encoding="utf-8")
    data = operations.graphql(_client(token_file, required=False), text, _variables(var or []))
    print_json(data)


def register(root: typer.Typer) -> None:
    """Add the ``numerai`` group to the root app."""
    root.add_typer(app, name="numerai")
