"""The one experiment lifecycle: ``running`` -> ``ok`` / ``failed`` / ``pruned``.

An experiment is recorded ``running`` before any user code runs (so a crash leaves a trace),
then closed once with its outcome. Recording is idempotent by ``idempotency_key``: a
second start with a key already stored replays the finished experiment
(:attr:`ExperimentRun.replayed`), waits for one still in flight in a live process, or takes
over one whose owner is gone (leases: soma/knowledge/_leases.py).
Runs that are only recorded once they have finished (study trials) go through
:func:`record_finished`.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from soma.errors import KnowledgeBaseError, SomaError, ValidationError
from soma.knowledge._leases import Lease, is_interrupted, owner_of

if TYPE_CHECKING:
    from soma.knowledge import Experiment, KnowledgeBase

__all__ = ["FINAL_STATUSES", "ExperimentRun", "record_finished"]

FINAL_STATUSES = ("ok", "failed", "pruned")
#: How long a second start with an in-flight idempotency key waits for the first by default.
IN_FLIGHT_WAIT_S = 600.0


def _now() -> datetime:
    return datetime.now(UTC)


class ExperimentRun:
    """One experiment's record from start to finish. Build it with :meth:`start`."""

    def __init__(
        self,
        kb: KnowledgeBase,
        id: str,
        replayed: Experiment | None,
        lease: Lease | None = None,
    ) -> None:
        self.kb = kb
        self.id = id
        #: The finished experiment an earlier run recorded under the same key (then
        #: nothing is run again); None for a new run.
        self.replayed = replayed
        self._lease = lease

    @classmethod
    def start(
        cls, kb: KnowledgeBase, experiment: Experiment, *, wait_s: float = IN_FLIGHT_WAIT_S
    ) -> ExperimentRun:
        """Record ``experiment`` as running (its ``status`` is set to ``running``), owned by
        this process (a lease with a heartbeat, closed with the run).

        When its idempotency key is already stored: a finished run is replayed; a run still
        in flight in a live process is waited on (up to ``wait_s`` seconds, then a
        KnowledgeBaseError) and then replayed; a run whose owner is gone is taken over.
        """
        from soma.knowledge import new_experiment_id

        if not wait_s >= 0:
            raise ValidationError("wait_s", f"expected a number of seconds >= 0, got {wait_s!r}")
        started = experiment.started or _now()
        experiment = experiment.model_copy(
            update={
                "status": "running",
                "started": started,
                "id": experiment.id or new_experiment_id(),
            }
        )
        # The lease is written before the record, so a running record always has its owner.
        lease = Lease.acquire(kb, experiment.id)
        try:
            stored = kb.record(experiment)
        except BaseException:
            lease.release()
            raise
        if stored == experiment.id:
            lease.start_heartbeat()
            return cls(kb, stored, None, lease)
        lease.release()  # the key was recorded before, under another id
        return cls._join(kb, stored, started, wait_s)

    @classmethod
    def _join(
        cls, kb: KnowledgeBase, stored: str, started: datetime, wait_s: float
    ) -> ExperimentRun:
        deadline = time.monotonic() + wait_s
        delay = 0.02
        while True:
            prior = kb.get(stored)  # closes it as interrupted if its owner is gone
            if prior.status != "running" and not is_interrupted(prior):
                return cls(kb, stored, prior)
            owner = owner_of(kb._store, stored)
            if owner is not None and not owner.is_gone():
                # In flight (or being taken over) by a live process: wait for its outcome.
                if time.monotonic() >= deadline:
                    raise KnowledgeBaseError(
                        f"experiment {stored} with this idempotency key is still running "
                        f"({owner.describe()}) after {wait_s:g} s; try again later"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            # Its owner is gone (or unknown: recorded by an older Soma): run it again here,
            # unless another caller takes it over first, then wait on that one.
            lease = Lease.take_over(kb, stored, owner)
            if lease is None:
                continue
            kb.update(stored, status="running", started=started, error=None, finished=None)
            lease.start_heartbeat()
            return cls(kb, stored, None, lease)

    def succeed(self, metrics: dict[str, float], **fields: Any) -> Experiment:
        """Close the experiment as ``ok`` with its metrics (and e.g. cache keys, duration)."""
        return self._close("ok", metrics=metrics, **fields)

    def fail(self, error: str, **fields: Any) -> Experiment | None:
        """Close the experiment as ``failed``. Best effort: the run's own failure is what the
        caller must see, so a knowledge base that refuses the write returns None."""
        with contextlib.suppress(SomaError):
            return self._close("failed", error=error, **fields)
        return None

    def prune(self, notes: str = "", **fields: Any) -> Experiment:
        """Close the experiment as ``pruned`` (stopped early by a pruner)."""
        return self._close("pruned", notes=notes, **fields)

    def _close(self, status: str, **fields: Any) -> Experiment:
        fields.setdefault("finished", _now())
        try:
            closed = self.kb.update(self.id, status=status, **fields)
        except BaseException:
            if self._lease is not None:
                self._lease.stop()
            raise
        # Only a closed record gives its lease up: one left running keeps its owner, so a
        # later reader closes it as interrupted once this process has ended.
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        return closed


def record_finished(kb: KnowledgeBase, experiment: Experiment) -> str:
    """Record an experiment that already has its outcome (one write); idempotent by key."""
    if experiment.status not in FINAL_STATUSES:
        raise ValidationError(
            "status", f"expected one of {', '.join(FINAL_STATUSES)}, got {experiment.status!r}"
        )
    return kb.record(experiment)
