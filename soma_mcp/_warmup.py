"""Warm the knowledge base in the background when a server starts.

The first semantic query used to pay for loading all-MiniLM-L6-v2 (4-5 s of imports and
weights on two cores) and for embedding what studies recorded without vectors, 15 s in all
after a fresh start. :func:`warm_up` does both on a daemon thread as the server begins to
serve: a query arriving earlier waits on the same model lock instead of loading it twice, and
tools that need no model are not held up. With ``--embedder hashing`` it costs nothing.
"""

from __future__ import annotations

import logging
import threading

from soma_tools._context import ToolContext

__all__ = ["warm_up"]

_log = logging.getLogger("soma.mcp")


def warm_up(ctx: ToolContext) -> threading.Thread:
    """Open the project's KB, load its embedder and bring the vector index up to date, on a
    daemon thread (returned, already started). A failure is logged, never raised: the
    first query then does the same work and reports the error itself."""

    def run() -> None:
        try:
            ctx.kb.query("warm up", k=1)  # loads the model, catches the index up
        except Exception:
            _log.warning("warming the knowledge base failed", exc_info=True)

    thread = threading.Thread(target=run, name="soma-mcp-warm-up", daemon=True)
    thread.start()
    return thread
