"""Errors the tool layer raises on purpose.

Every tool turns a failure it anticipated into a :class:`ToolError` whose message is written
for the reader of the tool result (a person or a language model): what went wrong, which
field or node, and what was expected. The MCP server turns it into an ``is_error`` result;
in-process callers (the agent) catch it like any exception.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from soma.errors import SomaError

if TYPE_CHECKING:
    import pydantic

__all__ = ["PipelineFailedError", "ToolError", "describe_validation_error", "shorten_quoted"]


class ToolError(SomaError):
    """A tool refused its input or could not do its work; ``field`` names the argument at fault.

    A value quoted in the message is cut to a short prefix: a 1 MB argument gives a short
    error, not a 2 MB one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        message = shorten_quoted(message)
        super().__init__(f"{field}: {message}" if field else message)


_LONG_QUOTED = re.compile(r"""(['"])([^'"\n]{121,})\1""")


def shorten_quoted(message: str, keep: int = 60) -> str:
    """Cut every quoted run longer than 120 characters to ``keep`` characters and its length."""

    def cut(match: re.Match[str]) -> str:
        quote, text = match.group(1), match.group(2)
        return f"{quote}{text[:keep]}…{quote} ({len(text):,} characters)"

    return _LONG_QUOTED.sub(cut, message)


class PipelineFailedError(ToolError):
    """User code raised while a pipeline ran; the experiment was recorded as failed.

    ``node`` names the failing node (or ``"metric"`` / ``"data"``), ``experiment_id`` the
    failed experiment in the knowledge base and ``traceback_tail`` the useful end of the
    traceback (the frames of the user's own code).
    """

    def __init__(
        self, message: str, *, node: str, experiment_id: str | None, traceback_tail: str
    ) -> None:
        self.node = node
        self.experiment_id = experiment_id
        self.traceback_tail = traceback_tail
        super().__init__(message)


BLANK = r"\S"  # the pattern of a field that must not be blank (see _models_runs.NOT_BLANK)


def _pattern(err: Any) -> object:
    return (err.get("ctx") or {}).get("pattern")


def describe_validation_error(tool: str, exc: pydantic.ValidationError) -> str:
    """``Invalid arguments for run_study: n_trials: Input should be ...`` (one line a field)."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        elif err["type"] == "string_pattern_mismatch" and _pattern(err) == BLANK:
            msg = "must not be blank"
        got = (
            "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r:.80})"
        )
        lines.append(f"{loc}: {msg}{got}")
    return f"Invalid arguments for {tool}: " + "; ".join(lines)
