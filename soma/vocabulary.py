"""The words every part of Soma shares: which way a metric is better, an experiment's status,
the action that produced it and where it came from.

Each is a :class:`~enum.StrEnum`, so a member *is* its string: it compares equal to
``"maximize"``, formats as ``maximize``, goes into JSON and SQLite as text, and pydantic fields
typed with it accept the plain strings. ``repr`` is the string's repr too, so error messages
that quote a value (``{direction!r}``) read the same whether they got a member or a string.

>>> Direction("maximize") == "maximize", f"{Direction.MINIMIZE}"
(True, 'minimize')
>>> Direction.MAXIMIZE.better(0.9, 0.8), Direction.MINIMIZE.better(0.9, 0.8)
(True, False)
>>> Direction.MINIMIZE.best([0.3, 0.1, 0.2]), Direction.MINIMIZE.sign
(0.1, -1.0)
>>> Direction.parse("maximise")
Traceback (most recent call last):
...
soma.errors.ValidationError: direction: expected 'maximize' or 'minimize', got 'maximise'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Self, TypeVar

from soma.errors import ValidationError

__all__ = [
    "ACTIONS",
    "DIRECTIONS",
    "ORIGINS",
    "STATUSES",
    "Action",
    "Direction",
    "Origin",
    "Status",
]

T = TypeVar("T")


class _Word(StrEnum):
    """A StrEnum whose repr is its value's (``'ok'``), and that parses with a field-named error."""

    def __repr__(self) -> str:
        return repr(self.value)

    @classmethod
    def parse(cls, value: object, field: str | None = None) -> Self:
        """``value`` as a member; a :class:`ValidationError` naming ``field`` if it is none."""
        try:
            return cls(value)
        except (ValueError, TypeError):  # TypeError: an unhashable value
            words = [repr(m.value) for m in cls]
            expected = " or ".join(words) if len(words) == 2 else "one of " + ", ".join(words)
            name = field or cls._field()
            raise ValidationError(name, f"expected {expected}, got {value!r}") from None

    @classmethod
    def _field(cls) -> str:
        return cls.__name__.lower()


class Direction(_Word):
    """Which way a metric is better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    @property
    def sign(self) -> float:
        """``+1.0`` for maximize, ``-1.0`` for minimize: ``sign * value`` is higher when better."""
        return 1.0 if self is Direction.MAXIMIZE else -1.0

    @property
    def arrow(self) -> str:
        """``↑`` (higher is better) or ``↓`` (lower is better), for tables."""
        return "↑" if self is Direction.MAXIMIZE else "↓"

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``."""
        return a > b if self is Direction.MAXIMIZE else a < b

    def best(self, values: Iterable[T], key: Callable[[T], float] | None = None) -> T:
        """The best of ``values`` (the first among equals); ``ValueError`` when empty."""
        pick = max if self is Direction.MAXIMIZE else min
        return pick(values, key=key) if key is not None else pick(values)  # type: ignore[type-var]


class Status(_Word):
    """Where an experiment stands."""

    OK = "ok"
    FAILED = "failed"
    PRUNED = "pruned"
    RUNNING = "running"


class Action(_Word):
    """What kind of step produced an experiment."""

    DRAFT = "draft"
    IMPROVE = "improve"
    DEBUG = "debug"
    ABLATE = "ablate"
    TUNE = "tune"
    MANUAL = "manual"


class Origin(_Word):
    """Which face recorded an experiment."""

    PYTHON = "python"
    CLI = "cli"
    MCP = "mcp"
    AGENT = "agent"
    STUDY = "study"


DIRECTIONS: tuple[str, ...] = tuple(m.value for m in Direction)
STATUSES: tuple[str, ...] = tuple(m.value for m in Status)
ACTIONS: tuple[str, ...] = tuple(m.value for m in Action)
ORIGINS: tuple[str, ...] = tuple(m.value for m in Origin)
