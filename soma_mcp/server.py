"""Soma's MCP server (official ``mcp`` SDK): the 13 tools, soma:// resources and prompts.

:func:`create_server` builds an ``MCPServer`` for one project; :func:`serve_stdio` runs it
over stdio (what Claude Desktop launches) and :func:`serve_http` over streamable HTTP
behind a bearer token. ``soma mcp`` is the command line for both.

Tools are published from :data:`soma_tools.TOOLS`: the input schema is the tool's
pydantic input model, the output schema its output model; a result carries both the
structured output and its readable text. Calls run in worker threads, so a long study does
not block other calls; progress is sent as MCP progress notifications when the client asks.

>>> from mcp import Client                                       # doctest: +SKIP
>>> async with Client(create_server("my-research")) as client:   # doctest: +SKIP
...     result = await client.call_tool("list_filters", {})
"""

from __future__ import annotations

import errno
import functools
import logging
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError as MCPToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from mcp_types import Resource as MCPResource
from mcp_types import Tool as MCPTool

import soma
from soma.errors import SomaError
from soma_mcp._http import BearerTokenMiddleware, generate_token
from soma_mcp._prompts import register_prompts
from soma_mcp._resources import listed_resources, register_resources
from soma_mcp._warmup import warm_up
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError
from soma_tools._registry import TOOLS, ToolSpec

__all__ = ["SomaServer", "create_server", "serve_http", "serve_stdio"]

_log = logging.getLogger("soma.mcp")

INSTRUCTIONS = """\
Soma runs machine-learning experiments in a research project and remembers every one.
Typical loop: list_research_lines / get_trajectory to see where things stand;
query_knowledge_base before trying an idea (it may have been tried); list_filters for the
pipeline steps; run_pipeline to test one hypothesis (it is recorded automatically) or
run_study to tune parameters; record_experiment with the experiment id to set a verdict.
Resources soma://experiments/{id}, soma://lines/{name} and soma://reports/{line} hold the
whole records behind summarised results."""


class SomaServer(MCPServer):
    """An MCPServer whose tools are the tool layer's :data:`TOOLS`, bound to one context."""

    def __init__(self, ctx: ToolContext, tools: dict[str, ToolSpec] | None = None) -> None:
        super().__init__(
            name="soma",
            title="Soma",
            description="Cached ML pipelines, studies and a research knowledge base.",
            instructions=INSTRUCTIONS,
            version=soma.__version__,
            log_level="WARNING",  # INFO would log every refused call (the client sees them)
        )
        self.tool_context = ctx
        self.tool_specs = dict(TOOLS if tools is None else tools)
        self._mcp_tools = [_mcp_tool(spec) for spec in self.tool_specs.values()]
        register_resources(self, ctx)
        register_prompts(self, ctx)

    async def list_tools(self) -> list[MCPTool]:
        return list(self._mcp_tools)

    async def list_resources(self) -> list[MCPResource]:
        # The fixed resources, then each line, report, study and recent experiment by URI
        # (templates alone never show in resources/list).
        listed = await anyio.to_thread.run_sync(listed_resources, self.tool_context)
        return [*await super().list_resources(), *listed]

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        spec = self.tool_specs.get(name)
        return None if spec is None else spec.input_schema()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        """Run one tool in a worker thread; anticipated failures become is_error results."""
        spec = self.tool_specs.get(name)
        if spec is None:
            raise MCPToolError(f"unknown tool {name!r}; tools: {', '.join(self.tool_specs)}")
        progress = _progress_sender(context) if spec.progress else None
        cancel = threading.Event()
        call = functools.partial(
            _cancellable, cancel, spec.invoke, self.tool_context, arguments, progress=progress
        )
        try:
            # A cancelled call is left to its thread, which the event stops: the worker
            # process running the user's code is killed and the experiment closed as failed.
            output = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancel.set()
            raise
        except ToolError as exc:
            raise MCPToolError(str(exc)) from exc
        except SomaError as exc:
            raise MCPToolError(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            _log.exception("tool %s failed unexpectedly", name)
            raise MCPToolError(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}") from exc
        except BaseException as exc:
            if not isinstance(exc, SystemExit | KeyboardInterrupt) or not _from_tool(exc):
                raise
            # sys.exit() in user code run in this process ([limits] workers = 0): the
            # server goes on, the caller is told.
            raise MCPToolError(f"{name}: user code raised {type(exc).__name__}{exc.args}") from None
        return CallToolResult(
            content=[TextContent(type="text", text=output.render())],
            structured_content=output.model_dump(mode="json"),
        )


def _cancellable(cancel: threading.Event, invoke: Any, *args: Any, **kwargs: Any) -> Any:
    from soma.execution import cancel_scope

    with cancel_scope(cancel):
        return invoke(*args, **kwargs)


def _from_tool(exc: BaseException) -> bool:
    """Whether ``exc`` was raised in a tool's thread (not a signal to this server)."""
    return exc.__traceback__ is not None and any(
        "soma_tools" in frame.filename for frame in traceback.extract_tb(exc.__traceback__)
    )


def _mcp_tool(spec: ToolSpec) -> MCPTool:
    return MCPTool(
        name=spec.name,
        title=spec.name.replace("_", " ").capitalize(),
        description=spec.description,
        input_schema=spec.input_schema(),
        output_schema=spec.output_schema(),
        annotations=ToolAnnotations(
            read_only_hint=spec.read_only,
            destructive_hint=spec.name == "write_filter_source",
            idempotent_hint=spec.read_only,
            open_world_hint=False,
        ),
    )


def _progress_sender(context: Context[Any, Any] | None) -> Any:
    """A thread-side progress callback that sends MCP progress notifications (or None)."""
    if context is None:
        return None

    def send(done: float, total: float | None, message: str | None) -> None:
        try:
            anyio.from_thread.run(context.report_progress, done, total, message)
        except Exception:  # a closed session must not fail the tool itself
            _log.debug("progress notification not sent", exc_info=True)

    return send


def create_server(project: str | Path | ToolContext = ".") -> SomaServer:
    """A server for the project in ``project`` (a folder, or an existing ToolContext)."""
    ctx = project if isinstance(project, ToolContext) else ToolContext(project)
    ctx.project  # noqa: B018 - a bad soma.toml fails here, before a client connects
    if ctx.workers is not None:
        ctx.workers.warm()  # the first call finds its worker process started
    return SomaServer(ctx)


def serve_stdio(project: str | Path | ToolContext = ".") -> None:
    """Serve the project's tools over stdio until the client closes the connection."""
    server = create_server(project)
    warm_up(server.tool_context)  # the first semantic query must not load the model
    try:
        server.run("stdio")
    finally:
        server.tool_context.close()


def serve_http(
    project: str | Path | ToolContext = ".",
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    announce: Any = None,
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp``, requiring ``Bearer <token>``.

    Without ``token`` (or with an empty one) a random one is generated.
    ``announce(url, token, generated)`` is called once before serving (default: print both
    to stderr).
    """
    import uvicorn

    listener = _bind(host, port)  # before anything is announced: a busy port is one line
    server = create_server(project)
    # An empty token (e.g. SOMA_MCP_TOKEN="") counts as none: one is generated *and shown*,
    # or nobody could ever connect.
    generated = not token
    token = token or generate_token()
    app = BearerTokenMiddleware(server.streamable_http_app(host=host), token)
    url = f"http://{_url_host(host)}:{port}/mcp"
    if host not in ("127.0.0.1", "localhost", "::1"):
        # The tools run code (filters can be written and run): say so when others can reach it.
        print(
            f"soma mcp: warning: bound to {host}, not loopback: anyone who can reach this "
            "port and has the token can write and run code in the project",
            file=sys.stderr,
        )
    (announce or _announce)(url, token, generated)
    warm_up(server.tool_context)  # the first semantic query must not load the model
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
        server.tool_context.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, handed to uvicorn (no window for another process
    to take the port between the check and the start); ValidationError when it is taken."""
    from soma.errors import ValidationError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = (
            "is already in use"
            if exc.errno == errno.EADDRINUSE
            else f"cannot be bound ({exc.strerror})"
        )
        raise ValidationError(
            "port", f"{host}:{port} {reason}; choose another with --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _announce(url: str, token: str, generated: bool) -> None:
    print(f"soma mcp: serving streamable HTTP at {url}", file=sys.stderr)
    if generated:  # a token the user chose is a secret they have: never echo it to logs
        print(f"soma mcp: generated token: {token}", file=sys.stderr)
    print("soma mcp: clients must send the header 'Authorization: Bearer <token>'", file=sys.stderr)
    sys.stderr.flush()
