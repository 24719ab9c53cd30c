"""Validating experiments against their lines, and the transactions that write them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pydantic
from sqlite_utils import Database

from soma.errors import KnowledgeBaseError, ValidationError
from soma.knowledge._records import Experiment, ResearchLine, new_experiment_id
from soma.knowledge._rows import (
    EXPERIMENT_COLUMNS,
    experiment_from_row,
    experiment_to_row,
    line_from_row,
    validation_error,
)
from soma.knowledge._search import SemanticIndex, text_of

__all__ = [
    "FROZEN_FIELDS",
    "UnknownLineError",
    "coerce",
    "insert_experiments",
    "insert_line",
    "merged",
    "unknown_line_message",
    "update_experiment",
    "update_line_row",
    "with_line_defaults",
]

FROZEN_FIELDS = ("id", "idempotency_key")
_INSERT_SQL = (
    f"INSERT INTO experiments ({', '.join(EXPERIMENT_COLUMNS)}, text_version) "
    f"VALUES ({', '.join('?' for _ in EXPERIMENT_COLUMNS)}, ?) RETURNING seq"
)
_SET_COLUMNS = ", ".join(f"{c} = ?" for c in EXPERIMENT_COLUMNS)


class UnknownLineError(KnowledgeBaseError):
    """A research line that does not exist was named; ``field`` is the argument that named it.

    A KnowledgeBaseError (callers that catch those keep working) that also carries the
    ``field`` and ``line`` like a ValidationError does.
    """

    def __init__(self, line: str, known: Sequence[str], field: str = "line") -> None:
        self.field = field
        self.line = line
        self.known = list(known)
        super().__init__(unknown_line_message(line, known))

    def __reduce__(self) -> tuple[type[UnknownLineError], tuple[str, list[str], str]]:
        # Errors cross process boundaries; the default reduce would pass the message alone.
        return (type(self), (self.line, self.known, self.field))


def unknown_line_message(name: str, known: Sequence[str]) -> str:
    listing = ", ".join(repr(n) for n in sorted(known)[:20]) if known else "none yet"
    return (
        f"unknown research line {name!r} (known: {listing}); "
        "create it first with create_line(name, metric=..., direction=...)"
    )


def coerce(experiment: Experiment | Mapping[str, Any]) -> Experiment:
    """An Experiment from an Experiment or a mapping of its fields."""
    if isinstance(experiment, Experiment):
        return experiment
    if isinstance(experiment, Mapping):
        try:
            return Experiment.model_validate(dict(experiment))
        except pydantic.ValidationError as exc:
            raise validation_error(exc) from None
    raise ValidationError(
        "experiment", f"expected an Experiment or a mapping, got {type(experiment).__name__}"
    )


def with_line_defaults(exp: Experiment, lines: Mapping[str, ResearchLine]) -> Experiment:
    """Give ``exp`` an id, and its line's metric and direction where it declares none.

    The line must exist, and a direction given for the line's metric must match the line's.
    """
    updates: dict[str, Any] = {}
    if exp.id is None:
        updates["id"] = new_experiment_id()
    if exp.line is not None:
        line = lines.get(exp.line)
        if line is None:
            raise UnknownLineError(exp.line, list(lines))
        metric = exp.primary_metric or line.metric
        updates["primary_metric"] = metric
        if metric == line.metric:
            if exp.direction is None:
                updates["direction"] = line.direction
            elif exp.direction != line.direction:
                raise ValidationError(
                    "direction",
                    f"{exp.direction!r} contradicts research line {line.name!r}, which "
                    f"declares {line.direction!r} for {metric!r}",
                )
    return exp.model_copy(update=updates) if updates else exp


def merged(
    current: Experiment, fields: Mapping[str, Any], lines: Mapping[str, ResearchLine]
) -> Experiment:
    """``current`` with ``fields`` changed, validated as a whole."""
    data = current.model_dump()
    data.update(fields)
    try:
        result = Experiment.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
    return with_line_defaults(result, lines)


def _next_text_version(db: Database) -> int:
    row = db.conn.execute("SELECT coalesce(max(text_version), 0) FROM experiments").fetchone()
    return int(row[0]) + 1


def insert_experiments(
    db: Database,
    exps: Sequence[Experiment],
    vector_of: Callable[[Experiment], np.ndarray | None],
    semantic: SemanticIndex,
) -> list[str]:
    """Insert ``exps`` with their vectors (inside the caller's write transaction).

    An idempotency key already stored, or repeated in the batch, yields the first id and
    writes nothing; an explicit id already taken is an error.
    """
    conn = db.conn
    ids: list[str] = []
    by_key: dict[str, str] = {}
    version = _next_text_version(db)
    for exp in exps:
        key = exp.idempotency_key
        if key:
            if key not in by_key:
                row = conn.execute(
                    "SELECT id FROM experiments WHERE idempotency_key = ?", [key]
                ).fetchone()
                if row is not None:
                    by_key[key] = row[0]
            if key in by_key:
                ids.append(by_key[key])
                continue
        if conn.execute("SELECT 1 FROM experiments WHERE id = ?", [exp.id]).fetchone():
            raise KnowledgeBaseError(f"an experiment with id {exp.id!r} already exists")
        values = experiment_to_row(exp)
        seq = conn.execute(
            _INSERT_SQL, [*(values[c] for c in EXPERIMENT_COLUMNS), version]
        ).fetchone()[0]
        vector = vector_of(exp)
        if vector is not None:  # None: the first query embeds it (see KnowledgeBase.record_many)
            semantic.store_vector(db, seq, version, vector)
        version += 1
        if key:
            by_key[key] = str(exp.id)
        ids.append(str(exp.id))
    return ids


def update_experiment(
    db: Database,
    exp_id: str,
    fields: Mapping[str, Any],
    lines: Mapping[str, ResearchLine],
    semantic: SemanticIndex,
    precomputed: tuple[str, np.ndarray] | None,
    embed: bool = True,
) -> Experiment:
    """Apply ``fields`` to the stored experiment (inside the caller's write transaction).
    ``embed=False`` changes the text without a vector (the next catch-up embeds it).

    Merges with what is stored *now* (another process may have changed other fields), and
    embeds again when the searchable text changed (``precomputed`` is a text already embedded
    outside the transaction, used when it is still the right one).
    """
    rows = list(db.query("SELECT * FROM experiments WHERE id = ?", [exp_id]))
    if not rows:
        raise KnowledgeBaseError(f"no experiment with id {exp_id!r}")
    seq = rows[0]["seq"]
    stored = experiment_from_row(rows[0])
    result = merged(stored, fields, lines)
    values = experiment_to_row(result)
    args = [values[c] for c in EXPERIMENT_COLUMNS]
    new_text = text_of(result)
    # A temporal index files the vector under its line and start time: moving either is a
    # new text_version too, so every index re-files it.
    placed = (result.line, result.started) == (stored.line, stored.started)
    if new_text == text_of(stored) and placed:
        db.conn.execute(f"UPDATE experiments SET {_SET_COLUMNS} WHERE seq = ?", [*args, seq])
        return result
    if not embed:
        vector = None  # the stale vector no longer matches: the next catch-up embeds it
    elif precomputed is not None and precomputed[0] == new_text:
        vector = precomputed[1]
    else:
        vector = semantic.embed([new_text])[0]
    version = _next_text_version(db)
    db.conn.execute(
        f"UPDATE experiments SET {_SET_COLUMNS}, text_version = ? WHERE seq = ?",
        [*args, version, seq],
    )
    if vector is not None:
        semantic.store_vector(db, seq, version, vector)
    return result


def insert_line(db: Database, line: ResearchLine) -> None:
    """Insert a new research line (inside the caller's write transaction)."""
    if db.conn.execute("SELECT 1 FROM lines WHERE name = ?", [line.name]).fetchone():
        raise KnowledgeBaseError(f"research line {line.name!r} already exists")
    row = [line.name, line.metric, line.direction, line.description]
    db.conn.execute(
        "INSERT INTO lines (name, metric, direction, description, created, status) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [*row, line.created.timestamp(), line.status],
    )


def update_line_row(
    db: Database, name: str, description: str | None, status: str | None
) -> ResearchLine:
    """Set a line's description and/or status (inside the caller's write transaction)."""
    rows = list(db.query("SELECT * FROM lines WHERE name = ?", [name]))
    if not rows:
        known = [r[0] for r in db.conn.execute("SELECT name FROM lines")]
        raise UnknownLineError(name, known, field="name")
    changes = {"description": description, "status": status}
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        sets = ", ".join(f"{k} = ?" for k in changes)
        db.conn.execute(f"UPDATE lines SET {sets} WHERE name = ?", [*changes.values(), name])
    return line_from_row({**rows[0], **changes})
