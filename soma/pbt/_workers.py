"""Training and evaluating one PBT member, in this process or in a worker process.

The data (the iterative node's inputs on the training and validation data) and the metric
travel once per worker, through the pool's initializer; each task then carries only the
member's filter and state, cloudpickled (so states holding lambdas or closures travel too).
"""

from __future__ import annotations

import importlib.machinery
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import cloudpickle

from soma.filter import Filter
from soma.study._inputs import MetricDef, MetricFailed

_log = logging.getLogger("soma.pbt")

__all__ = [
    "MemberContext",
    "MemberExecutor",
    "MemberOutcome",
    "init_worker",
    "pickle_by_value_if_needed",
    "run_member",
]


@dataclass
class MemberContext:
    node: str
    x_train: Any
    y_train: Any
    x_valid: Any
    y_valid: Any
    metric: MetricDef


@dataclass
class MemberOutcome:
    state: Any  # the new checkpoint (None when the member failed)
    score: float | None
    error: str | None
    duration_s: float


def run_member(ctx: MemberContext, flt: Any, state: Any, steps: int, fresh: bool) -> MemberOutcome:
    started = time.perf_counter()
    phase = "init_state"
    try:
        if fresh:
            state = flt.init_state(ctx.x_train, ctx.y_train)
        phase = "partial_fit"
        state = flt.partial_fit(ctx.x_train, ctx.y_train, state, steps)
        if state is None:
            # A None state is no checkpoint: nothing could be copied to other members, and
            # the next round would silently start this member over.
            raise TypeError(
                f"{type(flt).__name__}.partial_fit returned None; it must return the new state"
            )
        phase = "forward"
        prediction = flt.forward(ctx.x_valid, state)
        phase = "metric"
        score = ctx.metric.score(ctx.y_valid, prediction)
    except MetricFailed as exc:
        return MemberOutcome(None, None, str(exc), time.perf_counter() - started)
    except Exception as exc:
        error = f"node {ctx.node!r} failed during {phase}: {type(exc).__name__}: {exc}"
        return MemberOutcome(None, None, error, time.perf_counter() - started)
    return MemberOutcome(state, score, None, time.perf_counter() - started)


# -- worker processes ---------------------------------------------------------------------

_CONTEXT: MemberContext | None = None


def init_worker(payload: bytes) -> None:
    global _CONTEXT
    _CONTEXT = cloudpickle.loads(payload)


def run_member_task(filter_bytes: bytes, state_bytes: bytes | None, steps: int) -> bytes:
    """The pool task: everything in and out is cloudpickled bytes."""
    assert _CONTEXT is not None, "worker not initialised"
    flt = cloudpickle.loads(filter_bytes)
    fresh = state_bytes is None
    state = None if fresh else cloudpickle.loads(state_bytes)  # type: ignore[arg-type]
    outcome = run_member(_CONTEXT, flt, state, steps, fresh)
    try:
        return cloudpickle.dumps(outcome)
    except Exception as exc:  # a state that cannot travel back is this member's failure
        error = f"node {_CONTEXT.node!r}: its state cannot be pickled: {type(exc).__name__}: {exc}"
        return cloudpickle.dumps(MemberOutcome(None, None, error, outcome.duration_s))


def pickle_by_value_if_needed(obj: Any) -> None:
    """Classes from modules a fresh interpreter cannot import (pipeline files, notebooks,
    ``__main__``) are shipped by value instead of by reference."""
    module_name = getattr(obj, "__module__", None)
    if not module_name or module_name == "__main__":
        return  # cloudpickle already ships __main__ by value
    top = module_name.partition(".")[0]
    if importlib.machinery.PathFinder.find_spec(top, sys.path) is not None:
        return
    if top in sys.builtin_module_names:
        return
    module = sys.modules.get(module_name)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)


class MemberExecutor:
    """Runs a round's members in a process pool, or here; falls back to here (once, for
    the rest of the run) when the pool cannot start or ship the work."""

    def __init__(self, context: MemberContext, workers: int, sample_filter: Filter) -> None:
        self.context = context
        self.pool: ProcessPoolExecutor | None = None
        self.fallback_reason: str | None = None
        self.parallel = workers > 1  # every round ran in the pool
        if workers > 1:
            try:
                for obj in (sample_filter, context.metric.fn):
                    pickle_by_value_if_needed(obj)
                payload = cloudpickle.dumps(context)
                self.pool = ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=init_worker,
                    initargs=(payload,),
                )
            except Exception as exc:
                self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        self.fallback_reason = (
            f"process pool unavailable, ran in-process: {type(exc).__name__}: {exc}"
        )
        _log.warning("PBT: %s", self.fallback_reason)
        self.parallel = False
        self.close()

    def run(self, tasks: list[tuple[Filter, Any, bool]], steps: int) -> list[MemberOutcome]:
        if self.pool is not None:
            try:
                futures = [
                    self.pool.submit(
                        run_member_task,
                        cloudpickle.dumps(flt),
                        None if fresh else cloudpickle.dumps(state),
                        steps,
                    )
                    for flt, state, fresh in tasks
                ]
                return [cloudpickle.loads(f.result()) for f in futures]
            except Exception as exc:  # the pool broke or could not ship a task
                self._fall_back(exc)
        return [run_member(self.context, flt, state, steps, fresh) for flt, state, fresh in tasks]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
