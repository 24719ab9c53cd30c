"""The agent-run journal: an append-only log per run, read incrementally by id."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from soma.errors import ValidationError
from soma.knowledge._records import JournalEntry, check_name, jsonable
from soma.knowledge._rows import journal_from_row
from soma.knowledge._store import Store

__all__ = ["append", "entries", "run_ids"]


def append(
    store: Store, run_id: str, iteration: int, kind: str, payload: Mapping[str, Any] | None
) -> int:
    """Append one entry; its id is larger than every earlier entry's and never reused."""
    check_name(run_id, "run_id")
    check_name(kind, "kind")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ValidationError("iteration", f"expected an integer >= 0, got {iteration!r}")
    if payload is not None and not isinstance(payload, Mapping):
        raise ValidationError("payload", f"expected a mapping, got {type(payload).__name__}")
    text = json.dumps(jsonable(dict(payload or {}), "payload"), allow_nan=False)
    now = datetime.now(UTC).timestamp()
    return store.write(
        lambda db: int(
            db.conn.execute(
                "INSERT INTO journal (run_id, iteration, kind, payload, time) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                [run_id, iteration, kind, text, now],
            ).fetchone()[0]
        )
    )


def entries(
    store: Store,
    run_id: str,
    *,
    after_id: int = 0,
    kinds: str | Sequence[str] | None = None,
    limit: int | None = None,
) -> list[JournalEntry]:
    """A run's entries with id > ``after_id``, oldest first, optionally only some kinds."""
    sql = "SELECT * FROM journal WHERE run_id = ? AND id > ?"
    params: list[Any] = [run_id, int(after_id)]
    if kinds is not None:
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        sql += f" AND kind IN ({', '.join('?' for _ in wanted)})"
        params.extend(wanted)
    sql += " ORDER BY id"
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit", f"expected a positive integer, got {limit!r}")
        sql += f" LIMIT {limit}"
    rows = store.read(lambda db: list(db.query(sql, params)))
    return [journal_from_row(r) for r in rows]


def run_ids(store: Store) -> list[str]:
    """Every run id with a journal, in the order the runs started."""
    rows = store.read(
        lambda db: db.conn.execute(
            "SELECT run_id FROM journal GROUP BY run_id ORDER BY min(id)"
        ).fetchall()
    )
    return [r[0] for r in rows]
