"""Soma's MCP server: the adapter that publishes the one tool layer, :mod:`soma_tools`.

* :mod:`soma_tools` (folder ``tools/soma_tools``): the 13 tools as plain functions with pydantic
  inputs and outputs, :class:`ToolContext` and the :data:`TOOLS` registry. It imports no MCP SDK;
  the agent calls the same functions. The names below are re-exported from it;
* :mod:`soma_mcp.server`: :func:`create_server` (an official-SDK ``MCPServer`` publishing the
  tools, ``soma://`` resources and the prompts of ``soma_prompts``), :func:`serve_stdio` and
  :func:`serve_http` (streamable HTTP behind a bearer token), used by ``soma mcp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soma_tools import TOOLS, PipelineFailedError, ToolContext, ToolError, ToolSpec

if TYPE_CHECKING:
    from soma_mcp.server import create_server, serve_http, serve_stdio

__all__ = [
    "TOOLS",
    "PipelineFailedError",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "create_server",
    "serve_http",
    "serve_stdio",
]


def __getattr__(name: str) -> Any:
    # The server pulls in the MCP SDK (and Starlette); the tool layer alone does not.
    if name in ("create_server", "serve_http", "serve_stdio"):
        from soma_mcp import server

        return getattr(server, name)
    raise AttributeError(f"module 'soma_mcp' has no attribute {name!r}")
