"""``nx mcp`` through the MCP SDK's own client: start the server over stdio, list its tools,
call local tools (on the tiny dataset) and Numerai tools (against the fake API)."""

from __future__ import annotations

import json

import anyio
import polars as pl
from mcp import ClientSession, StdioServerParameters, stdio_client

from ..conftest import NX_EXE
from .conftest import fake_env
from .fake_api import MODEL_ID, SECRET_KEY

NUMERAI_TOOLS = {
    "check_api_credentials",
    "create_model",
    "upload_model",
    "get_model_profile",
    "get_model_performance",
    "get_leaderboard",
    "get_tournaments",
    "get_current_round",
    "list_datasets",
    "run_diagnostics",
    "graphql_query",
}
LOCAL_TOOLS = {
    "build_data",
    "data_info",
    "train",
    "score_predictions",
    "export_pickle",
    "check_pickle",
    "predict_live",
}


def _structured(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def test_mcp_server_lists_and_runs_tools(fake_numerai, tiny_data_dir, tmp_path):
    full = pl.read_parquet(tiny_data_dir / "v5.2" / "full.parquet", columns=["id", "target"])
    predictions = tmp_path / "preds.parquet"
    full.select("id", prediction=pl.col("target") * 0.5 + 0.25).write_parquet(predictions)
    params = StdioServerParameters(command=NX_EXE, args=["mcp"], env=fake_env(fake_numerai))
    progress: list[tuple[float, float | None, str | None]] = []
    stderr = (tmp_path / "server.log").open("w+")

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async def session_run():
        async with stdio_client(params, errlog=stderr) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                tools = {t.name: t for t in listed.tools}
                info = await session.call_tool(
                    "data_info", {"data_dir": str(tiny_data_dir), "data_version": "v5.2"}
                )
                built = await session.call_tool(
                    "build_data",
                    {"data_dir": str(tmp_path / "d"), "synthetic": True, "scale": "tiny"},
                    progress_callback=on_progress,
                )
                scored = await session.call_tool(
                    "score_predictions",
                    {"predictions": str(predictions), "data_dir": str(tiny_data_dir)},
                )
                whoami = await session.call_tool("check_api_credentials", {})
                uploads = await session.call_tool("upload_model", {"operation": "list"})
                assign = await session.call_tool(
                    "upload_model",
                    {"operation": "assign", "model_name": "nx_model", "pickle_id": "p-9"},
                )
                missing = await session.call_tool(
                    "upload_model", {"operation": "assign", "model_name": "nobody"}
                )
                return tools, info, built, scored, whoami, uploads, assign, missing

    tools, info, built, scored, whoami, uploads, assign, missing = anyio.run(session_run)

    assert NUMERAI_TOOLS | LOCAL_TOOLS <= set(tools)
    schema = tools["upload_model"].input_schema
    assert set(schema["properties"]["operation"]["enum"]) >= {
        "get_upload_auth", "create", "list", "assign",
    }  # fmt: skip
    assert schema["properties"]["timeout_seconds"]["type"] == "number"

    files = {f["name"]: f for f in _structured(info)["files"]}
    assert files["full.parquet"]["rows"] > 0 and files["full.parquet"]["eras"] > 0

    outputs = _structured(built)["outputs"]
    assert outputs["full.parquet"]["status"] == "built"
    assert (tmp_path / "d" / "v5.2" / "full.parquet").is_file()
    assert progress, "build_data sent no progress notifications"

    corr = _structured(scored)["columns"]["prediction"]["corr"]
    assert corr["mean"] > 0.5 and corr["eras"] > 0  # a prediction made from the target

    assert _structured(whoami)["account"] == "nx_user"
    assert _structured(uploads)["uploads"] == []
    assert _structured(assign) == {"assigned": True, "model_id": MODEL_ID, "pickle_id": "p-9"}
    assert fake_numerai.assigned == [(MODEL_ID, "p-9")]
    assert missing.is_error
    text = missing.content[0].text
    assert "no Classic model named 'nobody'" in text and "create-model" in text

    stderr.seek(0)
    assert SECRET_KEY not in stderr.read() + json.dumps(_structured(whoami))


def test_mcp_reads_the_one_string_token(fake_numerai, tmp_path):
    """Numerai's MCP server reads PUBLIC$SECRET from NUMERAI_MCP_AUTH; so does nx mcp."""
    from .fake_api import PUBLIC_ID

    env = fake_env(fake_numerai, NUMERAI_PUBLIC_ID="", NUMERAI_SECRET_KEY="")
    env["NUMERAI_MCP_AUTH"] = f"{PUBLIC_ID}${SECRET_KEY}"
    params = StdioServerParameters(command=NX_EXE, args=["mcp"], env=env)

    async def session_run():
        async with stdio_client(params, errlog=(tmp_path / "log").open("w")) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool("check_api_credentials", {})

    result = anyio.run(session_run)
    assert _structured(result)["credentials_source"] == "NUMERAI_MCP_AUTH"
    assert fake_numerai.calls == ["apiTokenInfo"]
