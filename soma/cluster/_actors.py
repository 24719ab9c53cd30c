"""Long-lived homes on the workers: Ray actors that take a payload once and then run calls.

PBT members train in these (``soma.pbt._actors``): each actor is set up once with
``setup(payload)`` (the payload travels once through the object store) and then runs
``fn(*args)`` round after round in the same process. An actor holds one Soma slot and one
CPU while it lives, so there are at most as many as the alive workers have of both. A
worker lost mid-call: Ray restarts the actor elsewhere (setup runs again) and retries the
call, ``restarts`` times; after that the call's result is a WorkerLost error, returned as
a value so the caller decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from soma.cluster._errors import ClusterError, WorkerLost
from soma.cluster._units import SLOT_RESOURCE

__all__ = ["Actors"]


class _Home:
    def __init__(self, setup: Callable[[Any], Any], payload: Any) -> None:
        setup(payload)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def where(self) -> str:
        from soma.cluster._remote import worker_name

        return worker_name()


class Actors:
    """``count`` actors on a Lab's workers; ``map`` spreads calls over them round-robin."""

    def __init__(
        self, lab: Any, count: int, setup: Callable[[Any], Any], payload: Any, restarts: int = 2
    ) -> None:
        import ray

        # An actor keeps a slot and a CPU while it lives: more than fit would wait forever.
        room = int(sum(min(n["slots"], n["cpus"]) for n in lab.workers() if n["alive"]))
        count = max(1, min(count, room))
        home = ray.remote(_Home).options(
            num_cpus=1,
            resources={SLOT_RESOURCE: 1.0},
            max_restarts=restarts,
            max_task_retries=restarts,
        )
        shared = ray.put(payload)
        self.actors = [home.remote(setup, shared) for _ in range(count)]
        try:
            self.workers: list[str] = ray.get([a.where.remote() for a in self.actors], timeout=120)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ClusterError(
                f"{count} actor(s) did not start on the workers within 120 s"
            ) from None

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``[fn(*args) for args in calls]`` on the actors; a lost call gives a WorkerLost."""
        import ray
        from ray import exceptions as rex

        refs = [
            self.actors[i % len(self.actors)].call.remote(fn, *args) for i, args in enumerate(calls)
        ]
        results: list[Any] = []
        for ref in refs:
            try:
                results.append(ray.get(ref))
            except (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError) as exc:
                results.append(
                    WorkerLost(
                        f"the worker running it died and its actor could not be restarted "
                        f"({type(exc).__name__})"
                    )
                )
        return results

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
