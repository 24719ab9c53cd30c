"""Base classes of the tool models and the progress callback type."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

# The shared words (one definition, in the core); re-exported for the tool models.
from soma.vocabulary import Action, Direction, Origin, Status

__all__ = [
    "Action",
    "Direction",
    "Origin",
    "ProgressCallback",
    "Record",
    "Status",
    "ToolInput",
    "ToolOutput",
]

#: progress(done, total_or_None, message_or_None); called from the tool's own thread.
ProgressCallback = Callable[[float, float | None, str | None], None]


class ToolInput(BaseModel):
    """Arguments of a tool. Unknown arguments are refused, naming them (typos do not pass)."""

    model_config = ConfigDict(extra="forbid")


class Record(BaseModel):
    """A row inside a tool result (a filter, an experiment hit, a trajectory point)."""


class ToolOutput(BaseModel):
    """Result of a tool: structured fields plus :meth:`render`, a readable text."""

    def render(self) -> str:
        """A short, readable text of this result (Markdown)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()
