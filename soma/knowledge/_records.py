"""The knowledge base's records: experiments, research lines, journal entries and results.

Every model validates at construction, so a bad value is refused where it enters, with the
field named:

>>> Experiment(name="baseline", metrics={"accuracy": float("nan")})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Experiment
metrics
  Value error, metric 'accuracy' must be a finite number, got nan ...
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from soma.errors import ValidationError
from soma.vocabulary import (
    ACTIONS,
    DIRECTIONS,
    ORIGINS,
    STATUSES,
    Action,
    Direction,
    Origin,
    Status,
)

__all__ = [
    "ACTIONS",
    "DIRECTIONS",
    "LINE_STATUSES",
    "ORIGINS",
    "STATUSES",
    "VERDICTS",
    "Action",
    "ChangePoint",
    "Direction",
    "Experiment",
    "JournalEntry",
    "Origin",
    "PromisingLine",
    "Report",
    "ResearchLine",
    "SearchHit",
    "Status",
    "TrajectoryPoint",
    "Trend",
    "as_utc",
    "check_direction",
    "check_name",
    "jsonable",
    "new_experiment_id",
]

# The shared words live in soma.vocabulary; re-exported here, where the records use them.
Verdict = Literal["supported", "refuted", "inconclusive"]

VERDICTS: tuple[str, ...] = ("supported", "refuted", "inconclusive")
LINE_STATUSES: tuple[str, ...] = ("active", "archived")

# Crockford's base32, lower case: sorts the same as the numbers it encodes.
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"
_id_lock = threading.Lock()
_id_last: list[int] = [0, 0]  # last millisecond, last random part (monotonic within a process)


def _b32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_B32[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_experiment_id() -> str:
    """A short, unique id that sorts by creation time: ``exp-`` + 10 time + 6 random chars.

    Within one process ids are strictly increasing even inside one millisecond.

    >>> a, b = new_experiment_id(), new_experiment_id()
    >>> a.startswith("exp-") and len(a) == 20 and a < b
    True
    """
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _id_last[0]:
            ms, rand = _id_last[0], _id_last[1] + 1
            if rand >= 1 << 30:  # 2^30 ids in one millisecond: borrow the next one
                ms, rand = ms + 1, int.from_bytes(os.urandom(4)) >> 3
        else:
            rand = int.from_bytes(os.urandom(4)) >> 3  # 29 bits: leaves room to increment
        _id_last[0], _id_last[1] = ms, rand
    return f"exp-{_b32(ms, 10)}{_b32(rand, 6)}"


def check_direction(value: object, field: str = "direction") -> Direction:
    """``value`` as a :class:`Direction` if it is ``"maximize"`` or ``"minimize"``; otherwise a
    ValidationError.

    >>> check_direction("maximise")
    Traceback (most recent call last):
    ...
    soma.errors.ValidationError: direction: expected 'maximize' or 'minimize', got 'maximise'
    """
    return Direction.parse(value, field)


def check_name(value: object, field: str, *, max_len: int = 200) -> str:
    """A non-empty single-line name of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"expected a non-empty string, got {value!r}")
    if len(value) > max_len or any(ord(c) < 32 for c in value):
        raise ValidationError(
            field, f"expected one line of at most {max_len} characters, got {value!r}"
        )
    return value.strip()


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as local time (what ``datetime.now()`` gives)."""
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def jsonable(value: Any, field: str) -> Any:
    """``value`` as plain JSON data (numpy scalars and arrays, tuples and paths converted).

    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` because JSON (and
    SQLite's JSON functions) cannot hold them. Anything else that JSON cannot hold is an error
    naming ``field``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{field}.{key!r}", "keys must be strings")
            out[key] = jsonable(item, f"{field}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return jsonable(tolist(), field)
    raise ValidationError(field, f"cannot be stored as JSON: {type(value).__name__}")


def _finite_metrics(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of metric name to number, got {type(value).__name__}")
    out: dict[str, float] = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name.strip() or '"' in name:
            raise ValueError(f"metric names must be non-empty strings without '\"', got {name!r}")
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            item = getattr(number, "item", None)  # numpy scalar
            number = item() if callable(item) else number
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"metric {name!r} must be a number, got {number!r}")
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r} must be a finite number, got {number!r}")
        out[name] = float(number)
    return out


class Experiment(BaseModel):
    """One experiment: what was tried, why, and what came out.

    ``id`` is assigned by :meth:`KnowledgeBase.record` when left empty. ``primary_metric`` and
    ``direction`` default to the research line's. ``idempotency_key`` makes recording safe to
    retry: recording the same key twice returns the first experiment's id.

    >>> e = Experiment(name="baseline", line="digits", metrics={"accuracy": 0.91})
    >>> e.status, e.action, e.origin
    ('ok', 'manual', 'python')
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str | None = None
    name: str
    hypothesis: str | None = None
    line: str | None = None
    pipeline_spec: dict[str, Any] | str | None = None
    pipeline_summary: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    primary_metric: str | None = None
    direction: Direction | None = None
    status: Status = Status.OK
    error: str | None = None
    parent_id: str | None = None
    action: Action = Action.MANUAL
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    started: datetime = Field(default_factory=_now)
    finished: datetime | None = None
    duration_s: float | None = None
    code_fingerprint: str | None = None
    data_fingerprint: str | None = None
    cache_keys: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None
    origin: Origin = Origin.PYTHON
    verdict: Verdict | None = None
    idempotency_key: str | None = None
    run_id: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or len(value) > 128 or any(c.isspace() or ord(c) < 32 for c in value)
        ):
            raise ValueError(f"expected 1-128 characters without spaces, got {value!r}")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> dict[str, float]:
        return _finite_metrics(value)

    @field_validator("params", "pipeline_spec", mode="before")
    @classmethod
    def _json_data(cls, value: Any, info: Any) -> Any:
        return value if isinstance(value, str) else jsonable(value, info.field_name)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        out: list[str] = []
        for tag in value:
            if not isinstance(tag, str) or not tag.strip():
                raise ValueError(f"tags must be non-empty strings, got {tag!r}")
            if tag.strip() not in out:
                out.append(tag.strip())
        return out

    @field_validator("started", "finished")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @field_validator("duration_s")
    @classmethod
    def _duration(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError(f"expected a finite number >= 0, got {value!r}")
        return value

    def value(self, metric: str | None = None) -> float | None:
        """The value of ``metric`` (default: the primary metric), or None when not measured."""
        name = metric or self.primary_metric
        return None if name is None else self.metrics.get(name)


class ResearchLine(BaseModel):
    """A research line: a named question with one metric and its declared direction."""

    model_config = ConfigDict(extra="forbid")

    name: str
    metric: str
    direction: Direction
    description: str = ""
    created: datetime = Field(default_factory=_now)
    status: Literal["active", "archived"] = "active"


class SearchHit(BaseModel):
    """One query result; ``score`` is the cosine similarity (None for a filter-only query)."""

    experiment: Experiment
    score: float | None = None


class JournalEntry(BaseModel):
    """One entry of an agent run's journal (see the contract for kinds and payloads)."""

    id: int
    run_id: str
    iteration: int
    kind: str
    payload: dict[str, Any]
    time: datetime


class Trend(StrEnum):
    """Where a research line is heading, in the direction its metric declares."""

    IMPROVING = "improving"
    PLATEAUED = "plateaued"
    DECLINING = "declining"
    UNKNOWN = "unknown"


class TrajectoryPoint(BaseModel):
    """One successful experiment on a line's trajectory, with the best value seen up to it."""

    experiment_id: str
    time: datetime
    value: float
    best_so_far: float
    best_experiment_id: str


class ChangePoint(BaseModel):
    """A shift in the level of a line's metric, starting at ``experiment_id``.

    ``before_ids`` / ``after_ids`` are the experiments whose mean is ``before_mean`` /
    ``after_mean``; ``changes`` maps what differs between ``previous_experiment_id`` and
    ``experiment_id`` (``params.<name>``, ``pipeline``, ``code_fingerprint``, ...) to
    ``[before, after]``; ``explanation`` says it in one sentence.
    """

    index: int
    experiment_id: str
    previous_experiment_id: str
    time: datetime
    metric: str
    before_mean: float
    after_mean: float
    before_ids: list[str]
    after_ids: list[str]
    improved: bool
    changes: dict[str, list[Any]]
    explanation: str


class PromisingLine(BaseModel):
    """A line worth pursuing, and why (``reasons``)."""

    name: str
    metric: str
    direction: Direction
    trend: Trend
    best_value: float | None
    best_experiment_id: str | None
    n_experiments: int
    last_activity: datetime | None
    reasons: list[str]
    description: str = ""


class Report(BaseModel):
    """A generated Markdown report and the files written for it."""

    line: str
    markdown: str
    path: Path
    plot_path: Path | None
