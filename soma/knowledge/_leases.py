"""Leases on ``running`` experiments: who runs a record, and whether that process still lives.

A ``running`` record is only a hope unless it names its owner. :class:`Lease` writes one row
per running experiment in the ``experiment_leases`` table beside the records (host, pid, the
process's start time so that a reused pid is not taken for the owner, a heartbeat refreshed by
a daemon thread, and a random token that makes take-overs compare-and-swap). Any process that
finds a running record whose owner is gone closes it as ``failed`` with an error starting
``interrupted`` (:func:`reap`): on the same host when the pid is dead or belongs to a later
process, on another host when the heartbeat is older than :data:`HEARTBEAT_TIMEOUT_S`.

The table is created on first use rather than by a schema migration: a knowledge base written
by an older Soma simply has no leases, and its running records (no owner known) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from soma.errors import SomaError

if TYPE_CHECKING:
    from soma.knowledge._kb import KnowledgeBase
    from soma.knowledge._records import Experiment
    from soma.knowledge._store import Store

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "HEARTBEAT_TIMEOUT_S",
    "INTERRUPTED",
    "Lease",
    "Owner",
    "is_interrupted",
    "reap",
    "reap_one",
]

#: How often a live run refreshes its heartbeat.
HEARTBEAT_INTERVAL_S = 5.0
#: A run on another host whose heartbeat is older than this is taken for dead (its pid cannot
#: be checked from here). Twelve missed beats: a loaded machine is not mistaken for a dead one.
HEARTBEAT_TIMEOUT_S = 60.0
#: The first word of the error of a run closed because its owner went away.
INTERRUPTED = "interrupted"

_TABLE = "experiment_leases"
# Set while this thread closes a record: kb.update reads the record back through kb.get, which
# must not try to close it again.
_reaping = threading.local()
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} (experiment_id TEXT PRIMARY KEY, token TEXT NOT NULL, "
    "host TEXT NOT NULL, pid INTEGER NOT NULL, proc_start REAL NOT NULL, heartbeat REAL NOT NULL)"
)


@dataclass(frozen=True)
class Owner:
    """The process holding a lease."""

    token: str
    host: str
    pid: int
    proc_start: float
    heartbeat: float

    def is_gone(self, *, now: float | None = None) -> bool:
        """True when this owner can no longer be running the experiment."""
        import psutil

        if self.host != socket.gethostname():
            now = time.time() if now is None else now
            return now - self.heartbeat > HEARTBEAT_TIMEOUT_S
        try:
            # A start time that differs: the pid was reused by a later process.
            return abs(psutil.Process(self.pid).create_time() - self.proc_start) > 1.0
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:  # exists but cannot be inspected: assume it is alive
            return False

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _this_process() -> tuple[str, int, float]:
    import psutil

    return socket.gethostname(), os.getpid(), psutil.Process().create_time()


def is_interrupted(experiment: Experiment) -> bool:
    """A run closed because its owner went away (not because its configuration failed)."""
    return experiment.status == "failed" and (experiment.error or "").startswith(INTERRUPTED)


# -- the table -----------------------------------------------------------------------------------
def _has_table(store: Store) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return store.read(lambda db: db.conn.execute(sql, [_TABLE]).fetchone() is not None)


def _ensure_table(store: Store) -> None:
    if not _has_table(store):
        store.write(lambda db: db.conn.execute(_CREATE))


def owner_of(store: Store, experiment_id: str) -> Owner | None:
    """The lease holder of ``experiment_id`` (None when it has no lease)."""
    if not _has_table(store):
        return None
    sql = f"SELECT token, host, pid, proc_start, heartbeat FROM {_TABLE} WHERE experiment_id = ?"
    row = store.read(lambda db: db.conn.execute(sql, [experiment_id]).fetchone())
    return None if row is None else Owner(*row)


class Lease:
    """This process's claim on one running experiment, kept fresh by a daemon thread."""

    def __init__(self, store: Store, experiment_id: str, token: str) -> None:
        self._store = store
        self.experiment_id = experiment_id
        self.token = token
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(cls, kb: KnowledgeBase, experiment_id: str) -> Lease:
        """Claim ``experiment_id`` (which may not be recorded yet: the lease comes first, so a
        running record is never without its owner)."""
        store = kb._store
        _ensure_table(store)
        lease = cls(store, experiment_id, uuid.uuid4().hex)
        host, pid, start = _this_process()
        sql = f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?, ?, ?, ?, ?)"
        args = [experiment_id, lease.token, host, pid, start, time.time()]
        store.write(lambda db: db.conn.execute(sql, args))
        return lease

    @classmethod
    def take_over(
        cls, kb: KnowledgeBase, experiment_id: str, previous: Owner | None
    ) -> Lease | None:
        """Claim an experiment whose owner is gone; None when another process claimed it first
        (compare-and-swap on the previous owner's token)."""
        store = kb._store
        _ensure_table(store)
        lease = cls(store, experiment_id, uuid.uuid4().hex)
        host, pid, start = _this_process()
        now = time.time()
        if previous is None:
            sql = f"INSERT OR IGNORE INTO {_TABLE} VALUES (?, ?, ?, ?, ?, ?)"
            args: list[Any] = [experiment_id, lease.token, host, pid, start, now]
        else:
            sql = (
                f"UPDATE {_TABLE} SET token = ?, host = ?, pid = ?, proc_start = ?, heartbeat = ? "
                "WHERE experiment_id = ? AND token = ?"
            )
            args = [lease.token, host, pid, start, now, experiment_id, previous.token]
        won = store.write(lambda db: db.conn.execute(sql, args).rowcount == 1)
        return lease if won else None

    def start_heartbeat(self, interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        self._thread = threading.Thread(
            target=self._beat, args=(interval_s,), name=f"soma-lease-{self.experiment_id}"
        )
        self._thread.daemon = True  # never keeps the interpreter alive
        self._thread.start()

    def _beat(self, interval_s: float) -> None:
        sql = f"UPDATE {_TABLE} SET heartbeat = ? WHERE experiment_id = ? AND token = ?"
        while not self._stop.wait(interval_s):
            try:
                self._store.write(
                    lambda db: db.conn.execute(sql, [time.time(), self.experiment_id, self.token])
                )
            except Exception:  # a closed or busy KB: the run itself reports what matters
                return

    def stop(self) -> None:
        """Stop the heartbeat, keeping the lease (the record could not be closed: it is
        closed as interrupted once this process has ended). Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def release(self) -> None:
        """Stop the heartbeat and drop the lease (the record is closed). Idempotent."""
        self.stop()
        sql = f"DELETE FROM {_TABLE} WHERE experiment_id = ? AND token = ?"
        with contextlib.suppress(SomaError):
            self._store.write(lambda db: db.conn.execute(sql, [self.experiment_id, self.token]))


# -- closing what was left running ---------------------------------------------------------------
def _interrupt(kb: KnowledgeBase, experiment_id: str, owner: Owner) -> Experiment | None:
    error = (
        f"{INTERRUPTED}: the process running it ({owner.describe()}) ended before the "
        "experiment finished"
    )
    # Another reader may close it at the same moment, or its owner may have been replaced by a
    # live take-over; re-checked just before writing.
    if owner_of(kb._store, experiment_id) != owner:
        return None
    _reaping.active = True
    try:
        with contextlib.suppress(SomaError):
            return kb.update(
                experiment_id, status="failed", error=error, finished=datetime.now(UTC)
            )
    finally:
        _reaping.active = False
    return None


def reap_one(kb: KnowledgeBase, experiment: Experiment) -> Experiment:
    """``experiment`` as it should be read: closed as interrupted if it is running and its
    owner is gone, unchanged otherwise."""
    if experiment.status != "running" or experiment.id is None:
        return experiment
    if getattr(_reaping, "active", False):
        return experiment
    owner = owner_of(kb._store, experiment.id)
    if owner is None or not owner.is_gone():
        return experiment
    return _interrupt(kb, experiment.id, owner) or experiment


def reap(kb: KnowledgeBase) -> list[str]:
    """Close every running experiment whose owner is gone; their ids."""
    store = kb._store
    if not _has_table(store):
        return []
    sql = (
        f"SELECT l.experiment_id, l.token, l.host, l.pid, l.proc_start, l.heartbeat "
        f"FROM {_TABLE} l JOIN experiments e ON e.id = l.experiment_id "
        "WHERE e.status = 'running'"
    )
    rows = store.read(lambda db: db.conn.execute(sql).fetchall())
    closed = []
    for exp_id, *owner_fields in rows:
        owner = Owner(*owner_fields)
        if owner.is_gone() and _interrupt(kb, exp_id, owner) is not None:
            closed.append(exp_id)
    return closed
