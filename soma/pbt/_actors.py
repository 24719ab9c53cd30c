"""PBT members on a cluster: actors on the Lab's workers, each holding the data once.

``PBT(..., lab=lab)`` starts one actor per free slot-and-CPU of the alive workers (at most one
per member; see ``soma.cluster._actors``). Each actor receives the member context (the
iterative node's inputs, the metric) once, through the object store, and trains members
round after round with the same ``run_member_task`` the local process pool runs; the driver
keeps exploit / explore and every member's checkpoint between rounds. A worker lost
mid-round: its actors restart on another worker and their calls run again; when that runs
out the member's round fails with an error saying so, and the run goes on.
"""

from __future__ import annotations

import copy
from typing import Any

import cloudpickle

from soma.pbt._workers import MemberOutcome, init_worker, run_member_task

__all__ = ["ActorMemberExecutor"]


class ActorMemberExecutor:
    """MemberExecutor's interface (``run``, ``close``, ``parallel``, ``fallback_reason``)
    over actors on a Lab's workers."""

    def __init__(self, context: Any, lab: Any, sample_filter: Any, population: int) -> None:
        from soma.cluster._actors import Actors
        from soma.cluster._node_step import ship_by_value

        self.parallel = True
        self.fallback_reason: str | None = None
        for obj in (sample_filter, context.metric.fn):
            if obj is not None:
                ship_by_value(obj)
        remote_context = copy.copy(context)
        remote_context.cache_path = None  # the driver's cache folder is not on the workers
        payload = cloudpickle.dumps(remote_context)
        self.actors = Actors(lab, population, init_worker, payload)
        self.workers = self.actors.workers  # where each actor lives

    def run(self, tasks: list[tuple[Any, Any, bool]], steps: int) -> list[MemberOutcome]:
        calls = [
            (cloudpickle.dumps(flt), None if fresh else cloudpickle.dumps(state), steps)
            for flt, state, fresh in tasks
        ]
        outcomes = []
        for result in self.actors.map(run_member_task, calls):
            if isinstance(result, Exception):
                outcomes.append(MemberOutcome(None, None, f"PBT member lost: {result}", 0.0))
            else:
                outcomes.append(cloudpickle.loads(result))
        return outcomes

    def close(self) -> None:
        self.actors.close()
