"""The executor: one walk over an ExecutionPlan for fit, forward and fit_forward.

A run keeps one output store (``values``: node name -> output) and, when a cache is in
use, one key store (node name -> Merkle key; recipes in ``soma.cache.keys``). Keys are
computed top-down without touching values: a node's state key hashes (filter fingerprint,
input keys, label key) and its output key hashes (filter fingerprint, state key, input
keys), so an unchanged graph on unchanged data finds every node in the cache, and a
changed param or code line changes the keys of that node and its descendants only.
A node's fit goes through the graph's training strategy (``soma.training``; ``Local``).

Parallel branches run on the graph's execution backend (``soma.execution``; a thread pool
by default). The calling thread works too and helpers claim branches one at a time, so
nested Parallel steps never wait on work that no thread has started (no pool deadlock).
The caller's contextvars are copied into every helper. The first failure stops the
remaining nodes of the run and reaches the caller as an ExecutionError naming the node,
with the original exception chained.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import secrets
import sys
import threading
from dataclasses import dataclass
from typing import Any

from soma._node_run import (
    _ITERATION,
    StateKey,
    _gather,
    _perf,
    _record,
    _Run,
    _run_node,
    _Stopped,
)
from soma.cache import Cache
from soma.cache import keys as cache_keys
from soma.errors import ExecutionError, GraphError, ValidationError
from soma.events import EventCallback, NodeReport, RunReport
from soma.execution import ExecutionBackend, ThreadBackend, default_workers
from soma.plan import (
    Branch,
    Cached,
    Execute,
    ExecutionPlan,
    Loop,
    NodeSpec,
    Parallel,
    Region,
    Remote,
    Sequence,
    Step,
)
from soma.training import Local, TrainingStrategy

__all__ = ["RunResult", "default_workers", "execute"]

_LOCAL = Local()

# Run ids: unique within the process (a counter) and across processes (a random prefix);
# cheaper than uuid4 on every forward.
_RUN_PREFIX = secrets.token_hex(3)
_run_counter = itertools.count(1)


@dataclass(slots=True)
class RunResult:
    output: Any
    states: dict[StateKey, Any]
    state_keys: dict[StateKey, str | None]
    report: RunReport


def execute(
    plan: ExecutionPlan,
    *,
    x: Any,
    y: Any = None,
    fitting: bool,
    want_output: bool,
    states: dict[StateKey, Any],
    state_keys: dict[StateKey, str | None],
    cache: Cache | None,
    callbacks: tuple[EventCallback, ...] = (),
    max_workers: int | None = None,
    backend: ExecutionBackend | None = None,
    strategy: TrainingStrategy | None = None,
) -> RunResult:
    """Run ``plan`` on input ``x``; fit every node first when ``fitting``.

    ``backend`` runs parallel branches (None: a thread pool for this run only, when a
    parallel step needs one); ``strategy`` fits the nodes (None: ``Local``).
    """
    if max_workers is not None and max_workers < 1:
        # `max_workers or default` would turn 0 into "every CPU" and a negative count into
        # a silent sequential run; Graph validates too, this guards direct callers.
        raise ValidationError("max_workers", f"expected an int >= 1, got {max_workers!r}")
    phase = "fit" if fitting else "forward"
    workers = max_workers or default_workers()
    run = _Run(
        backend=backend if backend is not None and backend.in_process else None,
        cache=cache,
        callbacks=callbacks,
        error=None,
        fitting=fitting,
        keyed=cache is not None,
        keys={},
        lock=threading.Lock(),
        new_state_keys={},
        new_states={},
        phase=phase,
        plan=plan,
        remote=_remote_lab(backend),
        report=RunReport(run_id=f"{phase}-{_RUN_PREFIX}{next(_run_counter):06x}", phase=phase),
        run_id="",
        skip_output=frozenset() if want_output else frozenset(plan.leaves),
        state_keys=state_keys,
        states=states,
        stopped=False,
        strategy=strategy if strategy is not None else _LOCAL,
        values={("in", None): x},
        workers=workers,
        y=y,
        y_key=None,
    )
    run.run_id = run.report.run_id
    started = _perf()
    if callbacks:
        run.emit("run_started", total_nodes=len(plan.nodes))
    owned = run.backend is None  # a run-local pool, made only if a Parallel step needs it
    try:
        if run.keyed:
            run.keys[("in", None)] = cache_keys.input_key("x", x)
            if fitting:
                run.y_key = cache_keys.input_key("y", y)
        if "soma.data.ref" in sys.modules:  # no DataRef exists before soma.data is loaded
            from soma.data.ref import resolve_input

            # References were keyed by their content hashes above; they resolve here, where
            # the nodes use them (or on the workers, when only Remote steps read them).
            if run.remote is None or not _refs_to_workers(plan, fitting):
                run.values[("in", None)], run.y = resolve_input(x), resolve_input(y)
        _run_step(plan.root, run)
        output = _region_output(plan.regions[(None, None)], run)[0] if want_output else None
    except (ExecutionError, _Stopped) as exc:
        error = run.error if isinstance(exc, _Stopped) and run.error is not None else exc
        _finish_report(run, started, error)
        if callbacks:
            run.emit("run_failed", duration_s=run.report.duration_s, error=str(error))
        error.__soma_report__ = run.report  # type: ignore[union-attr]
        raise error from error.__cause__
    except BaseException as exc:
        # Not a node's failure (an unhashable input, Ctrl-C): the run still ends with
        # run_failed, so listeners that saw run_started (progress bars) are not left open.
        _finish_report(run, started, exc)
        if callbacks:
            run.emit(
                "run_failed", duration_s=run.report.duration_s, error=f"{type(exc).__name__}: {exc}"
            )
        with contextlib.suppress(Exception):
            exc.__soma_report__ = run.report  # type: ignore[attr-defined]
        raise
    finally:
        if owned and run.backend is not None:
            run.backend.shutdown(wait=False)
    _finish_report(run, started, None)
    if callbacks:
        run.emit("run_finished", duration_s=run.report.duration_s)
    return RunResult(output, run.new_states, run.new_state_keys, run.report)


def _finish_report(run: _Run, started: float, error: BaseException | None) -> None:
    report = run.report
    report.duration_s = _perf() - started
    done = report.nodes
    report.nodes = {name: done.get(name) or NodeReport("not_run") for name in run.plan.order}
    if error is not None:
        report.ok = False
        report.error = str(error)


# -- steps ---------------------------------------------------------------------------


def _run_step(step: Step, run: _Run) -> None:
    kind = type(step)
    if kind is Sequence:
        for child in step.steps:  # type: ignore[union-attr]
            child_kind = type(child)
            if child_kind is Execute:
                _run_node(run.plan.nodes[child.node], run, False)  # type: ignore[union-attr]
            elif child_kind is Cached:
                _run_node(run.plan.nodes[child.node], run, True)  # type: ignore[union-attr]
            elif child_kind is Remote:
                _run_remote(child, run)  # type: ignore[arg-type]
            else:
                _run_step(child, run)
    elif kind is Execute:
        _run_node(run.plan.nodes[step.node], run, False)  # type: ignore[union-attr]
    elif kind is Cached:
        _run_node(run.plan.nodes[step.node], run, True)  # type: ignore[union-attr]
    elif kind is Remote:
        _run_remote(step, run)  # type: ignore[arg-type]
    elif kind is Parallel:
        _run_parallel(step, run)  # type: ignore[arg-type]
    elif kind is Loop:
        _run_loop(step, run)  # type: ignore[arg-type]
    elif kind is Branch:
        _run_branch(step, run)  # type: ignore[arg-type]
    else:  # pragma: no cover - the compiler makes only the kinds above
        raise GraphError(f"unknown plan step {step!r}")


def _remote_lab(backend: ExecutionBackend | None) -> Any:
    """The Lab that Remote steps run on: a remote backend's, else ``with lab.use():``'s."""
    lab = getattr(backend, "lab", None) if backend is not None and not backend.in_process else None
    if lab is None and "soma.cluster.lab" in sys.modules:  # no Lab exists before it loads
        from soma.cluster.lab import active_lab

        lab = active_lab()
    return lab


def _refs_to_workers(plan: ExecutionPlan, fitting: bool) -> bool:
    from soma.cluster._node_step import inputs_stay_refs

    return inputs_stay_refs(plan, fitting)


def _run_remote(step: Remote, run: _Run) -> None:
    if run.remote is None:  # no cluster in use: the node runs here, as an ordinary step
        _run_node(run.plan.nodes[step.node], run, step.cached)
        return
    from soma.cluster._node_step import run_remote_node

    run_remote_node(run.plan.nodes[step.node], run, step)


class _ParallelState:
    __slots__ = ("cond", "done", "errors", "next")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.next = 0
        self.done = 0
        self.errors: dict[int, BaseException] = {}


def _run_parallel(step: Parallel, run: _Run) -> None:
    branches = step.branches
    count = len(branches)
    helpers = min(run.workers, count) - 1
    if helpers <= 0:
        for branch in branches:
            _run_step(branch, run)
        return
    state = _ParallelState()
    backend = run.backend
    if backend is None:
        with run.lock:
            if run.backend is None:  # the calling thread is the last worker
                run.backend = ThreadBackend(run.workers - 1)
            backend = run.backend
    helpers = min(helpers, backend.max_workers)
    for _ in range(helpers):
        backend.submit(
            functools.partial(contextvars.copy_context().run, _drain, branches, run, state)
        )
    _drain(branches, run, state)
    with state.cond:
        while state.done < count:
            state.cond.wait()
    if state.errors:
        real = [i for i, e in state.errors.items() if not isinstance(e, _Stopped)]
        raise state.errors[min(real) if real else min(state.errors)]


def _drain(branches: tuple[Step, ...], run: _Run, state: _ParallelState) -> None:
    while True:
        with state.cond:
            index = state.next
            if index >= len(branches):
                return
            state.next += 1
        try:
            _run_step(branches[index], run)
        except BaseException as exc:
            with state.cond:
                state.errors[index] = exc
            run.stopped = True
        finally:
            with state.cond:
                state.done += 1
                state.cond.notify_all()


def _region_output(region: Region, run: _Run, source: Any = ("in", None)) -> tuple[Any, Any]:
    leaves = region.leaves
    keys = run.keys
    if not leaves:  # an empty Branch arm passes its input through
        return run.values[source], keys.get(source)
    if len(leaves) == 1:
        return run.values[leaves[0]], keys.get(leaves[0])
    output = {leaf: run.values[leaf] for leaf in leaves}
    key = cache_keys.leaves_key(leaves, keys) if run.keyed else None
    return output, key


# -- control steps -------------------------------------------------------------------


def _control_input(spec: NodeSpec, run: _Run) -> tuple[Any, Any]:
    args = _gather(spec, run.values)
    if not run.keyed:
        return args[0], None
    return args[0], cache_keys.control_input_key(spec.sources, run.keys)


def _control_call(run: _Run, name: str, func: Any, value: Any) -> bool:
    try:
        return bool(func(value))
    except Exception as exc:
        error = ExecutionError(name, run.phase, exc)
        with run.lock:
            if run.error is None:
                run.error = error
        raise error from exc


def _control_start(node: str, run: _Run) -> tuple[float, Any, Any]:
    """Shared start of a Branch/Loop: event, timer, and its (single) input with its key."""
    if run.stopped:
        raise _Stopped
    if run.callbacks:
        run.emit("node_started", node)
    started = _perf()
    value, key = _control_input(run.plan.nodes[node], run)
    run.values[("in", node)] = value  # the input its arm/body roots read
    run.keys[("in", node)] = key
    return started, value, key


def _control_finish(
    run: _Run, node: str, region: Region, started: float, value: Any, key: Any
) -> None:
    run.values[node] = value
    run.keys[node] = key
    duration = _perf() - started
    hit = _all_cached(run, region)
    _record(run, node, "cached" if hit else "ok", hit, duration, key)
    if run.callbacks:
        run.emit("node_finished", node, duration_s=duration, cache_key=key)


def _run_branch(step: Branch, run: _Run) -> None:
    name = step.node
    started, value, _key = _control_start(name, run)
    taken = "then" if _control_call(run, name, step.predicate, value) else "otherwise"
    for label, arm in step.arms:
        if label == taken:
            _run_step(arm, run)
        else:
            _mark_skipped(run, name, label)
    region = run.plan.regions[(name, taken)]
    output, out_key = _region_output(region, run, ("in", name))
    _control_finish(run, name, region, started, output, out_key)


def _all_cached(run: _Run, region: Region) -> bool:
    """A Branch/Loop counts as a cache hit when everything inside it that ran was one."""
    if not run.keyed:
        return False
    reports = run.report.nodes
    ran = [reports[n] for n in region.nodes if n in reports and reports[n].status != "skipped"]
    return all(r.cache_hit for r in ran)


def _mark_skipped(run: _Run, owner: str, label: str) -> None:
    for name in run.plan.regions[(owner, label)].nodes:
        if name not in run.report.nodes:
            run.report.nodes[name] = NodeReport("skipped")
        for other_owner, other_label in run.plan.regions:
            if other_owner == name:
                _mark_skipped(run, name, other_label)  # type: ignore[arg-type]


def _run_loop(step: Loop, run: _Run) -> None:
    name = step.node
    started, value, key = _control_start(name, run)
    source = ("in", name)
    region = run.plan.regions[(name, "body")]
    outer = _ITERATION.get()
    iterations = 0
    for index in range(step.max_iterations):
        run.values[source] = value
        run.keys[source] = key
        token = _ITERATION.set((*outer, index))
        try:
            _run_step(step.body, run)
        finally:
            _ITERATION.reset(token)
        value, key = _region_output(region, run, source)
        iterations += 1
        if step.until is not None and _control_call(run, name, step.until, value):
            break
    _control_finish(run, name, region, started, value, key)
    run.report.nodes[name].runs = iterations
