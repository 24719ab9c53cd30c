"""Base classes of the tool models and the progress callback type."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

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

    @field_validator("*", mode="before")
    @classmethod
    def _no_coercion(cls, value: object, info: ValidationInfo) -> object:
        # Lax pydantic reads True as 1 and "3" as 3: `n_trials: true` ran one trial. A number
        # field takes numbers only (an int where a float is asked for is still fine).
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _is_number(field.annotation) and isinstance(value, bool | str):
            raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.40}")
        return value


def _is_number(annotation: object) -> bool:
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = typing.get_args(annotation) if union else (annotation,)
    return bool not in options and any(option in (int, float) for option in options)


class Record(BaseModel):
    """A row inside a tool result (a filter, an experiment hit, a trajectory point)."""


class ToolOutput(BaseModel):
    """Result of a tool: structured fields plus :meth:`render`, a readable text."""

    def render(self) -> str:
        """A short, readable text of this result (Markdown)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()
