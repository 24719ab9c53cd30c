"""``soma mcp``: serve the research tools over MCP (stdio or streamable HTTP), print the config.

The MCP face owns this command group; ``soma`` finds it through the ``soma.commands`` entry
point (``mcp = "soma_mcp.cli:register"``), so the core CLI never imports the MCP face. The
server (and the MCP SDK) is imported inside the commands so that ``soma --help`` stays light.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from soma.cli._common import ProjectDir, check_embedder, fail

mcp_app = typer.Typer(
    name="mcp",
    help="Serve Soma's 13 research tools to Claude Desktop, IDEs or any MCP client.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    """Add ``soma mcp`` to ``app`` (the ``soma.commands`` entry point)."""
    app.add_typer(mcp_app)


@mcp_app.callback()
def serve(
    ctx: typer.Context,
    project: ProjectDir = Path("."),
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")
    ] = False,
    host: Annotated[
        str, typer.Option("--host", help="HTTP: address to bind (keep 127.0.0.1 unless needed).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="HTTP: port.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="SOMA_MCP_TOKEN",
            help="HTTP: bearer token clients must send (default: generated and printed).",
        ),
    ] = None,
    embedder: Annotated[
        str,
        typer.Option(
            "--embedder",
            help="Semantic search model: 'default' (all-MiniLM-L6-v2, offline) or 'hashing' "
            "(no model: fast start, word overlap only).",
        ),
    ] = "default",
) -> None:
    """Serve the project's tools over stdio (default; what Claude Desktop launches) or HTTP.

    With --http the endpoint is http://HOST:PORT/mcp and every request needs the header
    'Authorization: Bearer TOKEN'; requests without it get 401.
    """
    if ctx.invoked_subcommand is not None:
        return
    check_embedder(embedder)
    # Idle OpenMP threads (torch's, faiss's) spin by default and starve the server's own
    # threads on small machines: a semantic query over HTTP took 0.5 s instead of 30 ms.
    # Set before the first import of either; a value the user chose wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from soma.errors import SomaError
    from soma_tools import ToolContext

    try:
        tools = ToolContext(project, embedder=embedder)
        if http:
            from soma_mcp.server import serve_http

            serve_http(tools, host=host, port=port, token=token)
        else:
            from soma_mcp.server import serve_stdio

            serve_stdio(tools)
    except SomaError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@mcp_app.command("config")
def config(
    project: ProjectDir = Path("."),
    name: Annotated[str, typer.Option("--name", help="Server name under mcpServers.")] = "soma",
) -> None:
    """Print the JSON block for Claude Desktop's claude_desktop_config.json."""
    from soma.errors import ProjectError
    from soma.project import load_project

    try:
        root = load_project(project).root
    except ProjectError as exc:
        raise fail(str(exc)) from None
    block = {
        "mcpServers": {
            name: {
                "command": sys.executable,
                "args": ["-m", "soma.cli", "mcp", "--project", str(root)],
            }
        }
    }
    typer.echo(json.dumps(block, indent=2))
