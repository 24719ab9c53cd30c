"""The one experiment lifecycle: ``running`` -> ``ok`` / ``failed`` / ``pruned``.

An experiment is recorded ``running`` before any user code runs (so a crash leaves a trace),
then closed once with its outcome. Recording is idempotent by ``idempotency_key``: a
second start with a key already stored either replays the finished experiment
(:attr:`ExperimentRun.replayed`) or takes over one that an earlier attempt left running.
Runs that are only recorded once they have finished (study trials) go through
:func:`record_finished`.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from soma.errors import SomaError, ValidationError

if TYPE_CHECKING:
    from soma.knowledge import Experiment, KnowledgeBase

__all__ = ["FINAL_STATUSES", "ExperimentRun", "record_finished"]

FINAL_STATUSES = ("ok", "failed", "pruned")


def _now() -> datetime:
    return datetime.now(UTC)


class ExperimentRun:
    """One experiment's record from start to finish. Build it with :meth:`start`."""

    def __init__(self, kb: KnowledgeBase, id: str, replayed: Experiment | None) -> None:
        self.kb = kb
        self.id = id
        #: The finished experiment an earlier run recorded under the same key (then
        #: nothing is run again); None for a new run.
        self.replayed = replayed

    @classmethod
    def start(cls, kb: KnowledgeBase, experiment: Experiment) -> ExperimentRun:
        """Record ``experiment`` as running (its ``status`` is set to ``running``)."""
        started = experiment.started or _now()
        experiment = experiment.model_copy(update={"status": "running", "started": started})
        stored = kb.record(experiment)
        if stored == experiment.id:
            return cls(kb, stored, None)
        prior = kb.get(stored)  # the idempotency key was recorded before
        if prior.status != "running":
            return cls(kb, stored, prior)
        # An earlier attempt died while running: this run takes its record over.
        kb.update(stored, status="running", started=started, error=None)
        return cls(kb, stored, None)

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
        return self.kb.update(self.id, status=status, **fields)


def record_finished(kb: KnowledgeBase, experiment: Experiment) -> str:
    """Record an experiment that already has its outcome (one write); idempotent by key."""
    if experiment.status not in FINAL_STATUSES:
        raise ValidationError(
            "status", f"expected one of {', '.join(FINAL_STATUSES)}, got {experiment.status!r}"
        )
    return kb.record(experiment)
