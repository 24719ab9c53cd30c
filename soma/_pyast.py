"""One lock for Python's parser: CPython 3.11's ``ast`` is not thread-safe.

Parsing from several threads at once (runtime worker threads fingerprinting filters, MCP
tool calls in a thread pool parsing specs) can fail with "SystemError: AST constructor
recursion depth mismatch". Every parse or compile of user text goes through here.
"""

from __future__ import annotations

import ast
import threading
from typing import Any, Literal

__all__ = ["AST_LOCK", "compile_source", "parse"]

AST_LOCK = threading.RLock()


def parse(source: str, mode: Literal["exec", "eval"] = "exec") -> ast.AST:
    with AST_LOCK:
        return ast.parse(source, mode=mode)


def compile_source(source: str, filename: str) -> Any:
    with AST_LOCK:
        return compile(source, filename, "exec", dont_inherit=True)
