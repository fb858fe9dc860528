"""``nx mcp``: nx's MCP server over stdio, for research agents (tools in ``mcp_tools``).

The MCP SDK is imported only when the server starts, so other commands stay quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def mcp_command(
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="File holding PUBLIC_ID$SECRET_KEY (mode 600) for the Numerai tools. Default: "
            "NUMERAI_PUBLIC_ID + NUMERAI_SECRET_KEY, else NUMERAI_MCP_AUTH.",
        ),
    ] = None,
) -> None:
    """Run nx's MCP server on stdin/stdout (for Claude, Cursor and other MCP clients)."""
    from nx.cli.mcp_tools import build_server

    build_server(token_file).run("stdio")


def register(app: typer.Typer) -> None:
    """Add ``nx mcp`` to the root app."""
    app.command("mcp")(mcp_command)
