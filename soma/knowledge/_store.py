"""SQLite storage for the knowledge base: connection, schema migrations, locked-write retries.

Several processes (the agent, the MCP server, the TUI, a study) share one file. SQLite in WAL
mode lets readers run beside one writer; writes here always start with ``BEGIN IMMEDIATE`` so
the write lock is taken up front (no read-to-write upgrade that fails without waiting), the
connection's busy timeout waits for it, and a write that still finds the file locked is
retried with jittered back-off until a deadline. A caller therefore never sees "database is
locked": it sees success, or after the deadline a :class:`KnowledgeBaseError` saying which file
stayed locked and for how long.

The schema version lives in ``PRAGMA user_version``; migrations run in order, each inside the
same immediate transaction that checks the version, so two processes opening a new file at
once cannot both migrate it.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database

from soma.errors import KnowledgeBaseError

__all__ = ["SCHEMA_VERSION", "Store"]

T = TypeVar("T")

_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _migration_1(db: Database) -> None:
    """The first schema: lines, experiments, embeddings, journal, and the KB's identity."""
    db["kb_meta"].create({"key": str, "value": str}, pk="key")
    db["kb_meta"].insert({"key": "kb_id", "value": uuid.uuid4().hex})
    db["lines"].create(
        {
            "name": str,
            "metric": str,
            "direction": str,
            "description": str,
            "created": float,
            "status": str,
        },
        pk="name",
        not_null={"metric", "direction", "created", "status"},
    )
    text_cols = ["id", "name", "line", "hypothesis", "pipeline_spec", "pipeline_summary"]
    text_cols += ["params", "metrics", "primary_metric", "direction", "status", "error"]
    text_cols += ["parent_id", "action", "tags", "notes", "code_fingerprint"]
    text_cols += ["data_fingerprint", "cache_keys", "origin", "verdict", "idempotency_key"]
    text_cols += ["run_id"]
    columns: dict[str, type] = {"seq": int}
    columns.update({name: str for name in text_cols})
    columns.update(
        {"started": float, "finished": float, "duration_s": float, "seed": int, "text_version": int}
    )
    experiments = db["experiments"]
    experiments.create(
        columns,
        pk="seq",
        not_null={"id", "name", "status", "action", "origin", "started", "text_version"},
    )
    experiments.create_index(["id"], unique=True)
    experiments.create_index(["idempotency_key"], unique=True)
    experiments.create_index(["line", "started"])
    experiments.create_index(["started"])
    experiments.create_index(["text_version"])
    experiments.create_index(["run_id"])
    db["embeddings"].create(
        {"seq": int, "model": str, "text_version": int, "vector": bytes},
        pk=("seq", "model"),
    )
    db["journal"].create(
        {
            "id": int,
            "run_id": str,
            "iteration": int,
            "kind": str,
            "payload": str,
            "time": float,
        },
        pk="id",
        not_null={"run_id", "iteration", "kind", "payload", "time"},
    )
    db["journal"].create_index(["run_id", "id"])


# Append new migrations; never edit or reorder the ones already released.
_MIGRATIONS: tuple[Callable[[Database], None], ...] = (_migration_1,)
SCHEMA_VERSION = len(_MIGRATIONS)


class Store:
    """One SQLite connection to the knowledge base file, safe to share between threads.

    ``read(fn)`` and ``write(fn)`` run ``fn(db)`` (a ``sqlite_utils.Database``) inside one
    transaction — a consistent snapshot for reads, an immediate (write-locked) transaction for
    writes — retrying while another process holds the lock.
    """

    def __init__(
        self, path: str | Path, *, busy_timeout_s: float = 10.0, lock_deadline_s: float = 120.0
    ) -> None:
        self.in_memory = str(path) == ":memory:"
        self.path = Path(path) if not self.in_memory else Path(":memory:")
        self.lock_deadline_s = lock_deadline_s
        if not self.in_memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            # isolation_level=None: transactions are begun explicitly below, never implicitly.
            self.conn = sqlite3.connect(
                str(self.path),
                timeout=min(busy_timeout_s, lock_deadline_s),
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise KnowledgeBaseError(f"cannot open the knowledge base {self.path}: {exc}") from exc
        self.db = Database(self.conn, execute_plugins=False)
        try:
            self._retrying(self._configure, begin=None)
            # Only a file that needs migrating takes the write lock; readers of an up-to-date
            # file (the TUI, a second MCP server) open without waiting for writers.
            if self.read(self._version) == SCHEMA_VERSION:
                self.kb_id = self.read(self._kb_id)
            else:
                self.kb_id = self.write(self._migrate)
        except BaseException:
            self.conn.close()
            raise

    # -- setup ---------------------------------------------------------------------------------
    def _configure(self, db: Database) -> None:
        if not self.in_memory:
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise KnowledgeBaseError(f"{self.path}: could not switch to WAL mode ({mode})")
        # NORMAL is durable against application crashes in WAL mode and much faster than FULL.
        self.conn.execute("PRAGMA synchronous=NORMAL")

    def _version(self, db: Database) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _kb_id(self, db: Database) -> str:
        return str(self.conn.execute("SELECT value FROM kb_meta WHERE key = 'kb_id'").fetchone()[0])

    def _migrate(self, db: Database) -> str:
        version = self._version(db)
        if version > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"{self.path} has schema version {version}, newer than this Soma's "
                f"{SCHEMA_VERSION}: upgrade soma-research to open it"
            )
        for number in range(version, SCHEMA_VERSION):
            try:
                _MIGRATIONS[number](db)
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise  # another process holds the file: retried like any write
                raise self._migration_failed(number, exc) from exc
            except Exception as exc:
                raise self._migration_failed(number, exc) from exc
            self.conn.execute(f"PRAGMA user_version = {number + 1}")
        return self._kb_id(db)

    def _migration_failed(self, number: int, exc: Exception) -> KnowledgeBaseError:
        # Raised inside the write transaction, so every earlier step is rolled back with it.
        return KnowledgeBaseError(
            f"{self.path}: migrating the schema from version {number} to {number + 1} failed "
            f"({type(exc).__name__}: {exc}); the file was left unchanged"
        )

    # -- transactions --------------------------------------------------------------------------
    def read(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` in a read transaction (one consistent snapshot)."""
        return self._retrying(fn, begin="BEGIN")

    def write(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` in an immediate write transaction; committed if it returns."""
        return self._retrying(fn, begin="BEGIN IMMEDIATE")

    def _retrying(self, fn: Callable[[Database], T], *, begin: str | None) -> T:
        deadline = time.monotonic() + self.lock_deadline_s
        delay = 0.005
        while True:
            try:
                with self._lock:
                    return self._attempt(fn, begin)
            except sqlite3.DatabaseError as exc:
                busy = isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)
                if not busy:
                    raise KnowledgeBaseError(f"knowledge base {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise KnowledgeBaseError(
                        f"knowledge base {self.path} stayed locked by another process for "
                        f"{self.lock_deadline_s:.0f} s; try again when it is less busy"
                    ) from exc
            # Outside the thread lock, so other threads of this process can proceed meanwhile.
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.25)

    def _attempt(self, fn: Callable[[Database], T], begin: str | None) -> T:
        if begin is None:
            return fn(self.db)
        self.conn.execute(begin)
        try:
            result = fn(self.db)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return result

    def close(self) -> None:
        with self._lock:
            self.conn.close()
