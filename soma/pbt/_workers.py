"""Training and evaluating one PBT member, in this process or in a worker process.

A member's round is an ordinary evaluation (:func:`soma.experiments.evaluate`) of a one-node
graph: the iterative node on its precomputed inputs, fitted by :class:`StepsFrom` (the
member's checkpoint, ``partial_fit`` for ``steps`` more steps), so it goes through the
executor like any other fit: the graph's cache (keyed by the node's parameters, its inputs
and the starting checkpoint; a member whose configuration repeats is served from it), run
events, and a failing node reported as an :class:`~soma.errors.ExecutionError` naming it.

The data (the iterative node's inputs on the training and validation data), the metric and
how to open the cache travel once per worker, through the pool's initializer; each task
then carries only the member's filter and state, cloudpickled (so states holding lambdas or
closures travel too).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.machinery
import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from soma.cache import Cache
from soma.cache.keys import value_key
from soma.experiments import EvaluationError, Splits, evaluate
from soma.filter import Filter
from soma.fingerprint import combine
from soma.graph import Graph
from soma.study._inputs import MetricDef
from soma.training import FitCall, TrainingStrategy

_log = logging.getLogger("soma.pbt")

__all__ = [
    "MemberContext",
    "MemberExecutor",
    "MemberOutcome",
    "StepsFrom",
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
    # How members open the cache: a Cache does not travel to worker processes (it holds a
    # lock), so each process opens its own on the same folder (None: memory only).
    cache_path: Path | None = None
    cache_memory_items: int = 256

    def __post_init__(self) -> None:
        self.splits = Splits((self.x_train, self.y_train), (self.x_valid, self.y_valid))
        self.cache: Cache | None = None

    def open_cache(self, cache: Cache | None = None) -> None:
        """Use ``cache`` (this process's, shared with the PBT's graph) or open one: on the
        same folder when this machine has it (a cluster worker may not: memory only there,
        rather than a stray folder at the driver's path)."""
        if cache is None:
            folder = self.cache_path if self.cache_path and self.cache_path.is_dir() else None
            cache = Cache(folder, memory_items=self.cache_memory_items)
        self.cache = cache

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("cache", None)
        state.pop("splits", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()


@dataclass
class MemberOutcome:
    state: Any  # the new checkpoint (None when the member failed)
    score: float | None
    error: str | None
    duration_s: float
    failure: BaseException | None = None  # the ExecutionError / MetricFailed behind error
    cache_hits: int = 0


class StepsFrom(TrainingStrategy):
    """Fits a step-protocol node from a checkpoint: ``init_state`` when ``fresh``, then
    ``partial_fit`` for ``steps`` steps.

    Its cache token names the starting checkpoint (by content) and the step count, so a
    fitted state is shared exactly by members that start from the same checkpoint with the
    same hyperparameters (the node's own parameters are in the key already).
    """

    def __init__(self, start: Any, fresh: bool, steps: int) -> None:
        self.start, self.fresh, self.steps = start, fresh, steps
        self._token = combine("pbt-steps", str(steps), "fresh" if fresh else value_key(start))

    def cache_token(self) -> str | None:
        return self._token

    def describe(self) -> str:
        return f"StepsFrom({'fresh' if self.fresh else 'checkpoint'}, steps={self.steps})"

    def fit(self, call: FitCall) -> Any:
        flt, args = call.filter, call.args
        # A copy: partial_fit may update the state in place, and the checkpoint it starts
        # from is also a donor's state or a cache entry.
        state = flt.init_state(*args, call.y) if self.fresh else copy.deepcopy(self.start)
        state = flt.partial_fit(*args, call.y, state, self.steps)
        if state is None:
            # A None state is no checkpoint: nothing could be copied to other members, and
            # the next round would silently start this member over.
            raise TypeError(
                f"{type(flt).__name__}.partial_fit returned None; it must return the new state"
            )
        return state


def run_member(ctx: MemberContext, flt: Any, state: Any, steps: int, fresh: bool) -> MemberOutcome:
    started = time.perf_counter()
    graph = Graph(cache=ctx.cache, strategy=StepsFrom(state, fresh, steps))
    graph.node(flt, ctx.node)
    try:
        run = evaluate(graph, ctx.splits, [ctx.metric])
    except EvaluationError as exc:
        # The cause says it all: a MetricFailed names the metric, an ExecutionError the
        # node and the phase (fit: init_state / partial_fit; forward) it failed in.
        cause = exc.cause
        return MemberOutcome(None, None, str(cause), time.perf_counter() - started, cause)
    return MemberOutcome(
        graph.states[ctx.node],
        run.value,
        None,
        time.perf_counter() - started,
        cache_hits=run.cache_hits,
    )


# -- worker processes ---------------------------------------------------------------------

_CONTEXT: MemberContext | None = None


def init_worker(payload: bytes) -> None:
    global _CONTEXT
    _CONTEXT = cloudpickle.loads(payload)
    _CONTEXT.open_cache()


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
        if outcome.failure is not None:  # the error itself did not pickle: keep its text
            outcome.failure = None
            with contextlib.suppress(Exception):
                return cloudpickle.dumps(outcome)
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
