"""The tools of ``nx mcp``, the MCP server over stdio (official Python SDK) for research agents.

It offers nx's local research operations (build data, describe it, train configs,
score predictions) and Numerai's operations under the names Numerai's own MCP server
uses (``check_api_credentials``, ``create_model``, ``upload_model``...). Tools take
typed arguments and return JSON objects; long ones report progress to the client.
Every tool calls the engine in a worker thread; an :class:`~nx.engine.errors.NxError`
becomes a tool error carrying its one-line message, the API secret redacted.

Adding a tool is one decorated function: ``@tool()`` on an ``async def`` with typed
arguments and a ``ctx: Context`` parameter, whose body is ``await run(ctx, lambda
progress: engine_function(..., progress=progress))``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from nx.engine.errors import NxError
from nx.engine.progress import Progress, ProgressTask

SERVER_NAME = "nx"
INSTRUCTIONS = (
    "nx: research and deployment for the Numerai tournament. Local tools build and inspect "
    "datasets (build_data, data_info), train configs with era-wise CV (train) and score "
    "predictions files (score_predictions), export a Numerai pickle (export_pickle), run it "
    "as Numerai's harness does (check_pickle) and predict live data (predict_live). Numerai "
    "tools (check_api_credentials, "
    "create_model, upload_model, get_model_profile, get_model_performance, get_leaderboard, "
    "get_tournaments, get_current_round, list_datasets, run_diagnostics, graphql_query, "
    "submit_predictions) read NUMERAI_PUBLIC_ID + NUMERAI_SECRET_KEY or NUMERAI_MCP_AUTH."
)
_PROGRESS_EVERY_S = 0.25

_tools: list[tuple[Callable[..., Any], str]] = []
_settings: dict[str, Any] = {"token_file": None}


def tool(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an ``async def`` as a tool of the server ``build_server`` makes."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _tools.append((fn, name or fn.__name__))
        return fn

    return register


class _Task(ProgressTask):
    def __init__(self, send: Callable[[float, float | None], None], total: float | None) -> None:
        self._send, self.total, self.completed, self._last = send, total, 0.0, 0.0

    def advance(self, amount: float = 1) -> None:
        self.completed += amount
        self._maybe_send()

    def update(self, *, total: float | None = None, completed: float | None = None) -> None:
        self.total = total if total is not None else self.total
        self.completed = completed if completed is not None else self.completed
        self._maybe_send()

    def _maybe_send(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= _PROGRESS_EVERY_S:
            self._last = now
            self._send(self.completed, self.total)


class McpProgress(Progress):
    """The engine's progress, sent to the client as MCP progress notifications (from the
    worker thread the engine runs in)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        import anyio.from_thread

        def send(completed: float, total: float | None) -> None:
            try:
                anyio.from_thread.run(self._ctx.report_progress, completed, total, description)
            except Exception:  # progress is best effort: a closed stream must not fail work
                pass

        task = _Task(send, total)
        task._maybe_send(force=True)
        yield task
        task._maybe_send(force=True)

    def warn(self, message: str) -> None:
        import anyio.from_thread

        try:
            anyio.from_thread.run(self._ctx.warning, message)
        except Exception:
            pass


async def run(ctx: Context, work: Callable[[Progress], Any]) -> Any:
    """Run ``work(progress)`` in a worker thread; an NxError becomes a one-line ToolError."""
    import anyio.to_thread

    from nx.engine.numerai.credentials import redact

    try:
        return await anyio.to_thread.run_sync(lambda: work(McpProgress(ctx)))
    except NxError as error:
        raise ToolError(" ".join(redact(str(error)).split())) from None


def _client(required: bool = True):
    from nx.engine.numerai.client import NumeraiClient
    from nx.engine.numerai.credentials import find_credentials, load_credentials

    token_file = _settings["token_file"]
    credentials = load_credentials(token_file) if required else find_credentials(token_file)
    return NumeraiClient(credentials)


DataDir = Annotated[
    str | None,
    Field(
        description="Data directory holding <version>/ folders (default: $NX_DATA_DIR, else data)."
    ),
]


def _data_dir(value: str | None) -> Path:
    from nx.engine.paths import DATA_DIR_ENV, DEFAULT_DATA_DIR

    return Path(value or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


DataVersion = Annotated[str, Field(description="Numerai data version, e.g. v5.2.")]
ModelName = Annotated[str, Field(description="Name of a model slot on Numerai.")]
Tournament = Annotated[int, Field(description="8 Classic, 11 Signals, 12 Crypto.")]


# --- local research tools --------------------------------------------------------------


@tool()
async def build_data(
    ctx: Context,
    data_dir: DataDir = None,
    data_version: DataVersion = "v5.2",
    synthetic: Annotated[bool, Field(description="Generate synthetic data (no network).")] = False,
    scale: Annotated[
        Literal["tiny", "small", "full"] | None,
        Field(description="Synthetic size (default: the synthetic set there, else small)."),
    ] = None,
    seed: Annotated[int | None, Field(description="Synthetic seed (default 42).")] = None,
    offline: Annotated[bool, Field(description="Use only raw files already there.")] = False,
    rebuild: bool = False,
    replace_raw: Annotated[
        bool, Field(description="Let synthetic files replace raw files nx did not make.")
    ] = False,
) -> dict[str, Any]:
    """Get Numerai's raw files (download or synthetic) and build full.parquet, the benchmark
    file and their downsampled versions (nx build-data)."""
    from nx.engine.data.build import build_data as build

    result = await run(
        ctx,
        lambda progress: build(
            _data_dir(data_dir),
            data_version,
            synthetic=synthetic,
            scale=scale,
            seed=seed,
            rebuild=rebuild,
            replace_raw=replace_raw,
            download=not offline,
            progress=progress,
        ),
    )
    return {
        "version_dir": str(result.version_dir),
        "raw_source": result.raw_source,
        "outputs": {
            path.name: {"path": str(path), "status": "built" if path in result.built else "reused"}
            for path in result.outputs
        },
    }


@tool()
async def data_info(
    ctx: Context, data_dir: DataDir = None, data_version: DataVersion = "v5.2"
) -> dict[str, Any]:
    """Describe a data version's files: rows, eras, features, targets, sizes (nx data info)."""
    from nx.engine.data.info import data_info as info

    return (await run(ctx, lambda _: info(_data_dir(data_dir), data_version))).to_dict()


@tool()
async def train(
    ctx: Context,
    configs: Annotated[list[str], Field(description="Config files (.toml, .py, .json).")],
    data_dir: DataDir = None,
    output_dir: Annotated[str | None, Field(description="Experiment directory.")] = None,
    final: Annotated[bool, Field(description="Also fit and save a model on all eras.")] = False,
    overwrite: Annotated[
        bool, Field(description="Replace earlier outputs of the same names.")
    ] = False,
) -> dict[str, Any]:
    """Train configs with era-wise CV, score their out-of-fold predictions (nx train)."""
    from nx.cli.train import _summary_row
    from nx.engine.train import load_config, train_configs

    def work(progress: Progress) -> list[dict[str, Any]]:
        results = train_configs(
            [load_config(Path(c)) for c in configs],
            data_dir=_data_dir(data_dir),
            output_dir=Path(output_dir) if output_dir else None,
            final=final,
            overwrite=overwrite,
            progress=progress,
        )
        return [_summary_row(result) for result in results]

    return {"configs": await run(ctx, work)}


@tool()
async def score_predictions(
    ctx: Context,
    predictions: Annotated[str, Field(description="Predictions file (parquet or CSV).")],
    data_dir: DataDir = None,
    data_version: DataVersion = "v5.2",
    pred_cols: Annotated[list[str] | None, Field(description="Columns to score.")] = None,
    target: str = "target",
    data: Annotated[str | None, Field(description="File to join era/target from.")] = None,
    benchmark_model: str | None = None,
    meta_model: Annotated[str | None, Field(description="Meta model file for MMC.")] = None,
    features: Annotated[str | None, Field(description="Feature set for FNC.")] = None,
) -> dict[str, Any]:
    """Score predictions per era like numerai-tools: corr, BMC, MMC, FNC (nx score)."""
    from nx.engine.metrics.io import (
        ScoreInputs,
        load_score_frame,
        score_document,
        score_loaded,
    )

    def work(progress: Progress) -> dict[str, Any]:
        inputs = ScoreInputs(
            predictions=Path(predictions),
            pred_cols=list(pred_cols or []),
            target_col=target,
            data=Path(data) if data else None,
            data_dir=_data_dir(data_dir),
            data_version=data_version,
            benchmark_model=benchmark_model,
            meta_model=Path(meta_model) if meta_model else None,
            features=features,
        )
        scored = load_score_frame(inputs, progress)
        table, summary = score_loaded(scored, progress=progress)
        from nx.cli.common import _json_safe

        return _json_safe(score_document(scored, summary, table["era"].n_unique()))

    return await run(ctx, work)


Runtime = Annotated[
    str | None, Field(description="Numerai runtime (Python version): 3.10-3.13; default 3.12.")
]


@tool()
async def export_pickle(
    ctx: Context,
    model_dirs: Annotated[list[str], Field(description="Model folders from train --final.")],
    output: Annotated[str, Field(description="The pickle to write.")],
    weights: Annotated[list[float] | None, Field(description="Blend weights.")] = None,
    runtime: Runtime = None,
    neutralize_features: Annotated[str | None, Field(description="Feature set.")] = None,
    neutralize_proportion: float = 1.0,
    data_dir: DataDir = None,
) -> dict[str, Any]:
    """Write a Numerai pickle of saved models, built inside the runtime venv (nx export)."""
    from nx.engine.export import DEFAULT_RUNTIME, export_models

    result = await run(
        ctx,
        lambda progress: export_models(
            list(model_dirs),
            output,
            runtime=runtime or DEFAULT_RUNTIME,
            weights=weights,
            neutralize_features=neutralize_features,
            neutralize_proportion=neutralize_proportion,
            data_dir=_data_dir(data_dir),
            progress=progress,
        ),
    )
    return {
        "pickle": str(result.pickle_path),
        "sidecar": str(result.sidecar_path),
        **result.sidecar,
    }


@tool()
async def check_pickle(
    ctx: Context,
    pickle: Annotated[str, Field(description="The pickle to check.")],
    runtime: Runtime = None,
    data_dir: DataDir = None,
) -> dict[str, Any]:
    """Run a pickle as Numerai's harness does, in its runtime venv (nx check-pickle); a
    failed rule is a tool error naming it."""
    from nx.engine.export import check_pickle as run_check

    report = await run(
        ctx,
        lambda progress: run_check(
            Path(pickle), runtime=runtime, data_dir=_data_dir(data_dir), progress=progress
        ),
    )
    return report.to_dict()


@tool()
async def predict_live(
    ctx: Context,
    sources: Annotated[list[str], Field(description="Model folders, or one pickle.")],
    output: Annotated[str, Field(description="CSV to write (id,prediction).")],
    data: Annotated[str | None, Field(description="Rows (default: live.parquet).")] = None,
    weights: Annotated[list[float] | None, Field(description="Blend weights.")] = None,
    runtime: Runtime = None,
    data_dir: DataDir = None,
) -> dict[str, Any]:
    """Predictions in Numerai's submission format from model folders or a pickle (nx predict)."""
    from nx.engine.export import predict_models, predict_pickle

    def work(progress: Progress):
        if len(sources) == 1 and Path(sources[0]).is_file():
            return predict_pickle(
                sources[0], output, data=data, runtime=runtime, data_dir=_data_dir(data_dir)
            )
        return predict_models(
            list(sources), output, data=data, weights=weights, data_dir=_data_dir(data_dir)
        )

    result = await run(ctx, work)
    return {"output": str(result.output), "rows": result.rows, "eras": result.eras}


# --- Numerai tools (the names of Numerai's own MCP server) ------------------------------


@tool()
async def check_api_credentials(ctx: Context) -> dict[str, Any]:
    """Check the Numerai API key: account, key name, scopes, and scopes nx would need."""
    from nx.engine.numerai import operations

    return await run(ctx, lambda _: operations.whoami(_client()))


@tool()
async def create_model(ctx: Context, name: str, tournament: Tournament = 8) -> dict[str, Any]:
    """Create a model slot on Numerai (the name is checked first)."""
    from nx.engine.numerai import operations

    return await run(ctx, lambda _: operations.create_model(_client(), name, tournament))


@tool()
async def upload_model(
    ctx: Context,
    operation: Annotated[
        Literal["upload", "get_upload_auth", "create", "list", "assign"],
        Field(
            description="upload: check, send, register, validate and assign a local pickle; "
            "get_upload_auth: a presigned URL for filename; create: register a pickle PUT "
            "there; list: uploads with their status; assign: make pickle_id the model's."
        ),
    ],
    model_name: Annotated[str | None, Field(description="Model slot (all but list).")] = None,
    file_path: Annotated[str | None, Field(description="Local .pkl (upload).")] = None,
    filename: Annotated[str | None, Field(description="File name (get_upload_auth, create).")] = (
        None
    ),
    pickle_id: Annotated[str | None, Field(description="Uploaded pickle (assign).")] = None,
    runtime: Annotated[str, Field(description="Python version of the runtime image.")] = "3.12",
    data_version: DataVersion = "v5.2",
    skip_check: Annotated[bool, Field(description="upload without nx check-pickle.")] = False,
    wait: Annotated[bool, Field(description="upload: wait for the validation.")] = True,
    timeout_seconds: float = 900.0,
    data_dir: DataDir = None,
) -> dict[str, Any]:
    """Numerai model uploads (pickles run by Numerai every round), one operation per call."""
    from nx.engine.errors import ConfigError
    from nx.engine.numerai import operations, upload

    def need(value: Any, what: str) -> Any:
        if not value:
            raise ConfigError(f"upload_model {operation} needs {what}")
        return value

    def work(progress: Progress) -> dict[str, Any]:
        client = _client()
        if operation == "list":
            return upload.model_status(client, model_name)
        if operation == "upload":  # the pickle is checked before anything is sent
            return upload.upload_pickle(
                client,
                need(file_path, "file_path"),
                need(model_name, "model_name"),
                runtime=runtime,
                data_version=data_version,
                wait=wait,
                check=not skip_check,
                data_dir=_data_dir(data_dir),
                timeout_s=timeout_seconds,
                progress=progress,
            )
        mid = operations.model_id(client, need(model_name, "model_name"))
        if operation == "get_upload_auth":
            return upload.pickle_upload_auth(client, need(filename, "filename"), mid)
        if operation == "create":
            image_id = operations.docker_image_id(client, runtime)
            version_id = operations.data_version_id(client, data_version)
            new_id = upload.register_pickle(
                client, need(filename, "filename"), mid, image_id, version_id
            )
            return {"pickle_id": new_id, "model_id": mid}
        operations.assign_pickle(client, mid, need(pickle_id, "pickle_id"))
        return {"assigned": True, "model_id": mid, "pickle_id": pickle_id}

    return await run(ctx, work)


@tool()
async def submit_predictions(
    ctx: Context,
    file_path: Annotated[str, Field(description="Live predictions (CSV or parquet).")],
    model_name: ModelName,
    tournament: Tournament = 8,
    data_dir: DataDir = None,
    data_version: DataVersion = "v5.2",
) -> dict[str, Any]:
    """Check a live predictions file and submit it for a model."""
    from nx.engine.numerai.upload import submit_predictions as submit

    return await run(
        ctx,
        lambda progress: submit(
            _client(),
            file_path,
            model_name,
            tournament=tournament,
            data_dir=_data_dir(data_dir),
            data_version=data_version,
            progress=progress,
        ),
    )


@tool()
async def get_model_profile(ctx: Context, model_name: ModelName) -> dict[str, Any]:
    """A model's public profile (id, start date, stake)."""
    from nx.engine.numerai import operations

    return await run(ctx, lambda _: operations.profile(_client(False), model_name))


@tool()
async def get_model_performance(
    ctx: Context,
    model_name: ModelName,
    last_n_rounds: int | None = None,
    tournament: Tournament = 8,
) -> dict[str, Any]:
    """Per-round scores of a model, newest round first."""
    from nx.engine.numerai import operations

    return await run(
        ctx,
        lambda _: operations.performance(_client(False), model_name, last_n_rounds, tournament),
    )


@tool()
async def get_leaderboard(ctx: Context, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """The Classic leaderboard."""
    from nx.engine.numerai import operations

    rows = await run(ctx, lambda _: operations.leaderboard(_client(False), limit, offset))
    return {"leaderboard": rows}


@tool()
async def get_tournaments(ctx: Context) -> dict[str, Any]:
    """Numerai's tournaments."""
    from nx.engine.numerai import operations

    return {"tournaments": await run(ctx, lambda _: operations.tournaments(_client(False)))}


@tool()
async def get_current_round(ctx: Context, tournament: Tournament = 8) -> dict[str, Any]:
    """The current round (number, open and close times); null between rounds."""
    from nx.engine.numerai import operations

    current = await run(ctx, lambda _: operations.current_round(_client(False), tournament))
    return {"round": current}


@tool()
async def list_datasets(ctx: Context, round: int | None = None) -> dict[str, Any]:
    """Dataset files Numerai offers (Classic), for the current or a given round."""
    from nx.engine.numerai import operations

    return {"datasets": await run(ctx, lambda _: operations.datasets(_client(False), round))}


@tool()
async def run_diagnostics(
    ctx: Context,
    file_path: Annotated[str, Field(description="Validation predictions (CSV or parquet).")],
    model_name: ModelName,
    wait: bool = True,
    timeout_seconds: float = 900.0,
) -> dict[str, Any]:
    """Upload validation predictions to Numerai's diagnostics and return the summary."""
    from nx.engine.numerai.upload import run_diagnostics as diagnostics

    return await run(
        ctx,
        lambda progress: diagnostics(
            _client(),
            file_path,
            model_name,
            wait=wait,
            timeout_s=timeout_seconds,
            progress=progress,
        ),
    )


@tool()
async def graphql_query(
    ctx: Context, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Any GraphQL query to Numerai's API (sent with the credentials when there are some)."""
    from nx.engine.numerai import operations

    return await run(ctx, lambda _: operations.graphql(_client(False), query, variables))


# --- the server and its command ---------------------------------------------------------


def build_server(token_file: Path | None = None) -> MCPServer:
    """The nx MCP server with every registered tool; the Numerai tools read their
    credentials from ``token_file`` when given, else from the environment."""
    from nx.engine import __version__

    _settings["token_file"] = token_file
    server = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )
    for fn, name in _tools:
        server.add_tool(fn, name=name, structured_output=True)
    return server
