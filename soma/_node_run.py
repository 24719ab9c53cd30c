"""Running one node: the per-run state (``_Run``) and the fit/forward of a single filter.

Split from ``soma.execute`` (which walks the plan); see that module for the design.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from soma.cache import keys as cache_keys
from soma.errors import ExecutionError, GraphError
from soma.events import Event, NodeReport, dispatch
from soma.fingerprint import filter_fingerprint
from soma.plan import KEYED, SINGLE, VARIADIC, NodeSpec
from soma.training import FitCall

__all__: list[str] = []

_perf = time.perf_counter
_MISSING: Any = object()
_ITERATION: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    "soma_loop_iteration", default=()
)
StateKey = tuple[str, tuple[int, ...]]  # (node, loop iteration path)


class _Stopped(Exception):
    """Raised inside a run after another branch failed: stop without running more nodes."""


class _Run:
    __slots__ = (
        "backend",
        "cache",
        "callbacks",
        "error",
        "fitting",
        "keyed",
        "keys",
        "lock",
        "new_state_keys",
        "new_states",
        "phase",
        "plain",
        "plan",
        "remote",
        "report",
        "run_id",
        "skip_output",
        "state_keys",
        "states",
        "stopped",
        "strategy",
        "values",
        "workers",
        "y",
        "y_key",
    )

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        # No cache, no fitting, no listeners: nodes take the short path in _run_plain.
        self.plain = not self.keyed and not self.fitting and not self.callbacks

    def emit(self, kind: str, node: str | None = None, **fields: Any) -> None:
        dispatch(self.callbacks, Event(kind, self.run_id, self.phase, node, **fields))  # type: ignore[arg-type]


def _gather(spec: NodeSpec, values: dict) -> tuple[Any, ...]:
    mode = spec.mode
    if mode == SINGLE:
        return (values[spec.sources[0]],)
    if mode == KEYED:
        return ({source: values[source] for source in spec.sources},)
    return tuple(values[source] for source in spec.sources)


def _record(run: _Run, name: str, status: str, hit: bool, duration: float, key: Any) -> None:
    reports = run.report.nodes
    previous = reports.get(name)
    if previous is None or previous.status in ("skipped", "not_run"):
        reports[name] = NodeReport(status, hit, duration, key, 1)  # type: ignore[arg-type]
        return
    # A Loop body node: accumulate over iterations; "cached" only if every pass was.
    previous.duration_s += duration
    previous.runs += 1
    previous.key = key
    previous.cache_hit = previous.cache_hit and hit
    if status != "cached" or previous.status != "cached":
        previous.status = status  # type: ignore[assignment]


def _run_plain(spec: NodeSpec, run: _Run) -> None:
    """Forward of one node with no cache, no listeners and no loop: the hot path."""
    values = run.values
    started = _perf()
    try:
        if spec.stateless:
            state = None
        else:
            state = run.states.get(spec.state_id, _MISSING)
            if state is _MISSING:
                raise GraphError(_unfitted_message(run, spec.name, ()))
        mode = spec.mode
        if mode == SINGLE:
            output = spec.filter.forward(values[spec.sources[0]], state)
        elif mode == VARIADIC:
            output = spec.filter.forward(*_gather(spec, values), state=state)
        else:
            output = spec.filter.forward(*_gather(spec, values), state)
    except _Stopped:
        raise
    except Exception as exc:
        _fail(run, spec.name, exc, _perf() - started, None, None)
    values[spec.name] = output
    run.report.nodes[spec.name] = NodeReport("ok", False, _perf() - started, None, 1)


def _fail(
    run: _Run, name: str, exc: Exception, duration: float, key: Any, iteration: int | None
) -> None:
    _record(run, name, "failed", False, duration, key)
    error = ExecutionError(name, run.phase, exc)
    with run.lock:
        if run.error is None:
            run.error = error
    if run.callbacks:
        run.emit("node_failed", name, duration_s=duration, error=str(error), iteration=iteration)
    raise error from exc


def _run_node(spec: NodeSpec, run: _Run, use_cache: bool) -> None:
    if run.stopped:
        raise _Stopped
    if run.plain and not spec.in_loop:
        _run_plain(spec, run)
        return
    name = spec.name
    values = run.values
    callbacks = run.callbacks
    path = _ITERATION.get() if spec.in_loop else ()
    iteration = path[-1] if path else None
    if callbacks:
        run.emit("node_started", name, iteration=iteration)
    started = _perf()
    lookups = hits = 0
    tier = None
    out_key = None
    try:
        args = _gather(spec, values)
        keyed = run.keyed
        if keyed:
            fingerprint = spec.fingerprint or _fingerprint(spec)
            by_name = spec.mode == KEYED
            input_keys = cache_keys.node_input_keys(spec.sources, run.keys, by_name=by_name)
        if spec.stateless:
            state = None
            state_key = None
        elif run.fitting:
            state_key = (
                cache_keys.state_key(
                    fingerprint, input_keys, run.y_key, run.strategy.node_cache_token(name)
                )
                if keyed
                else None
            )  # the strategy is part of the key: DataParallel's state is not Local's
            found = False
            if use_cache:
                lookups += 1
                found, state, tier = run.cache.lookup(state_key)  # type: ignore[union-attr]
                hits += found
            if not found:
                # The graph's training strategy carries the fit out (Local: right here).
                call = FitCall(
                    name, spec.filter, args, run.y, spec.fit_takes_y, spec.mode == VARIADIC
                )
                state = run.strategy.fit(call)
                if use_cache:
                    run.cache.put(state_key, state)  # type: ignore[union-attr,arg-type]
            run.new_states[(name, path)] = state
            run.new_state_keys[(name, path)] = state_key
        else:
            state = run.states.get((name, path), _MISSING)
            if state is _MISSING:
                raise GraphError(_unfitted_message(run, name, path))
            state_key = run.state_keys.get((name, path))
            if keyed and state_key is None:  # fitted without a cache: key the state by value
                state_key = cache_keys.value_key(state)
        if keyed:
            out_key = cache_keys.output_key(fingerprint, state_key, input_keys)
        if name not in run.skip_output:
            found = False
            if use_cache:
                lookups += 1
                found, output, tier = run.cache.lookup(out_key)  # type: ignore[union-attr,arg-type]
                hits += found
            if not found:
                if spec.mode == VARIADIC:
                    output = spec.filter.forward(*args, state=state)
                else:
                    output = spec.filter.forward(*args, state)
                if use_cache:
                    run.cache.put(out_key, output)  # type: ignore[union-attr,arg-type]
            values[name] = output
            if keyed:
                run.keys[name] = out_key
    except _Stopped:
        raise
    except Exception as exc:
        _fail(run, name, exc, _perf() - started, out_key, iteration)
    duration = _perf() - started
    # A stateless leaf during fit needs nothing: with a cache that counts as a hit.
    cached = use_cache and hits == lookups
    _record(run, name, "cached" if cached else "ok", cached, duration, out_key)
    if callbacks:
        if cached:
            run.emit("node_cache_hit", name, duration_s=duration, cache_key=out_key, tier=tier,
                     iteration=iteration)  # fmt: skip
        run.emit("node_finished", name, duration_s=duration, cache_key=out_key, iteration=iteration)


def _fingerprint(spec: NodeSpec) -> str:
    spec.fingerprint = filter_fingerprint(spec.filter)
    return spec.fingerprint


def _unfitted_message(run: _Run, name: str, path: tuple[int, ...]) -> str:
    if path:
        fitted = sum(1 for (node, p) in run.states if node == name and p[:-1] == path[:-1])
        return (
            f"node {name!r} sits in a Loop body that ran {fitted} iteration(s) during fit; "
            f"forward needs iteration {path[-1] + 1}. Fit on data that needs as many "
            "iterations, or raise max_iterations / loosen until"
        )
    return (
        f"node {name!r} has no fitted state (it learns in fit); call fit(x, y) first, or "
        "it sits in a Branch arm that fit did not take"
    )
