"""A plan's Remote step: one graph node run on a cluster worker, the cache kept on the driver.

The executor (``soma.execute``) hands a Remote step here when a Lab is in use. Keys and cache
lookups happen on the driver first, exactly as for a Cached step, so a node whose state and
output are cached never leaves the driver. Otherwise one job carries the node's filter, its
inputs (through Ray's object store) and, for forward, its state; it fits through the graph's
training strategy and/or runs forward on a worker that has the placement's resources and tags,
and sends back the new state and the output. Errors come back as RemoteNodeError naming the
node and the worker. While it waits the driver watches the run: when another branch failed
(or ``lab.cancel()`` was called) the job is cancelled on its worker.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from soma._node_run import (
    _ITERATION,
    _MISSING,
    _gather,
    _perf,
    _record,
    _Run,
    _Stopped,
    _unfitted_message,
)
from soma.cache import keys as cache_keys
from soma.cluster._errors import ClusterError, RemoteNodeError
from soma.cluster._remote import RemoteTaskError, node_task
from soma.errors import ExecutionError, GraphError
from soma.fingerprint import filter_fingerprint
from soma.plan import KEYED, VARIADIC, NodeSpec
from soma.training import FitCall

if TYPE_CHECKING:
    from soma.plan import Remote

__all__ = ["inputs_stay_refs", "run_remote_node"]

_POLL_S = 0.25  # how often a waiting node looks whether its run was stopped


def run_remote_node(spec: NodeSpec, run: _Run, step: Remote) -> None:
    if run.stopped:
        raise _Stopped
    name = spec.name
    use_cache = step.cached
    path = _ITERATION.get() if spec.in_loop else ()
    iteration = path[-1] if path else None
    if run.callbacks:
        run.emit("node_started", name, iteration=iteration)
    started = _perf()
    lookups = hits = 0
    tier = None
    out_key = None
    worker: str | None = None
    try:
        args = _gather(spec, run.values)
        keyed = run.keyed
        if keyed:
            fingerprint = spec.fingerprint or _fingerprint(spec)
            input_keys = cache_keys.node_input_keys(
                spec.sources, run.keys, by_name=spec.mode == KEYED
            )
        call: FitCall | None = None
        state: Any = None
        state_key = None
        if spec.stateless:
            pass
        elif run.fitting:
            state_key = cache_keys.state_key(fingerprint, input_keys, run.y_key) if keyed else None
            found = False
            if use_cache:
                lookups += 1
                found, state, tier = run.cache.lookup(state_key)  # type: ignore[union-attr]
                hits += found
            if not found:
                call = FitCall(
                    name, spec.filter, args, run.y, spec.fit_takes_y, spec.mode == VARIADIC
                )
        else:
            state = run.states.get((name, path), _MISSING)
            if state is _MISSING:
                raise GraphError(_unfitted_message(run, name, path))
            state_key = run.state_keys.get((name, path))
            if keyed and state_key is None:
                state_key = cache_keys.value_key(state)
        if keyed:
            out_key = cache_keys.output_key(fingerprint, state_key, input_keys)
        want = name not in run.skip_output
        output: Any = None
        have_output = False
        if want and use_cache:
            lookups += 1
            have_output, output, tier = run.cache.lookup(out_key)  # type: ignore[union-attr,arg-type]
            hits += have_output
        forward = want and not have_output
        if call is not None or forward:
            fitted, computed, worker = _dispatch(run, spec, step, call, args, state, forward)
            if call is not None:
                state = fitted
                if use_cache:
                    run.cache.put(state_key, state)  # type: ignore[union-attr,arg-type]
            if forward:
                output = computed
                if use_cache:
                    run.cache.put(out_key, output)  # type: ignore[union-attr,arg-type]
        if run.fitting and not spec.stateless:
            run.new_states[(name, path)] = state
            run.new_state_keys[(name, path)] = state_key
        if want:
            run.values[name] = output
            if keyed:
                run.keys[name] = out_key
    except _Stopped:
        raise
    except Exception as exc:
        _fail(run, name, exc, _perf() - started, out_key, iteration)
    duration = _perf() - started
    cached = use_cache and hits == lookups
    _record(run, name, "cached" if cached else "ok", cached, duration, out_key)
    if run.callbacks:
        if cached:
            run.emit("node_cache_hit", name, duration_s=duration, cache_key=out_key, tier=tier,
                     iteration=iteration)  # fmt: skip
        run.emit("node_finished", name, duration_s=duration, cache_key=out_key,
                 iteration=iteration, worker=worker)  # fmt: skip


def _dispatch(
    run: _Run,
    spec: NodeSpec,
    step: Remote,
    call: FitCall | None,
    args: tuple,
    state: Any,
    forward: bool,
) -> tuple[Any, Any, str]:
    """One job on the cluster; -> (fitted state or None, output, worker name)."""

    lab = run.remote
    _ship_by_value(type(spec.filter))
    task_args = (run.strategy, call, spec.filter, args, state, spec.mode == VARIADIC, forward)
    job = lab.submit_placed(node_task, task_args, {}, step.placement, f"node {spec.name!r}")
    try:
        while True:  # one ray.get per poll: a quick job costs one call, not a wait and a get
            try:
                ok, value, worker = job._get(_POLL_S)
                break
            except TimeoutError:
                if run.stopped:  # another branch failed: do not leave this one running
                    job.cancel()
                    raise _Stopped from None
        job.worker = worker
    except BaseException:
        job.cancel()  # Ctrl-C or a lost driver thread: free the worker too
        raise
    finally:
        lab._forget(job)
    if not ok:
        raise _NodeFailed(value)
    fitted, output = value
    return fitted, output, worker


class _NodeFailed(Exception):
    def __init__(self, error: RemoteTaskError) -> None:
        self.error = error


def _fail(
    run: _Run, name: str, exc: Exception, duration: float, key: Any, iteration: int | None
) -> None:
    _record(run, name, "failed", False, duration, key)
    cause: BaseException = exc
    if isinstance(exc, _NodeFailed):  # the node's own error, raised on a worker
        cause = exc.error.cause
        error: ExecutionError = RemoteNodeError(name, run.phase, cause, exc.error.worker)
    elif isinstance(exc, ClusterError):  # cancelled, worker lost, environment failed
        error = ExecutionError(name, run.phase, exc)
    else:
        error = ExecutionError(name, run.phase, exc)
    with run.lock:
        if run.error is None:
            run.error = error
    if run.callbacks:
        run.emit("node_failed", name, duration_s=duration, error=str(error), iteration=iteration)
    raise error from cause


def inputs_stay_refs(plan: Any, fitting: bool) -> bool:
    """Whether a run on a Lab may leave its DataRef inputs unresolved on the driver: every
    node that reads the graph input (and, when fitting, every node that fits, since fit takes
    y) is a Remote step. The refs then travel to the workers as references (a few hundred
    bytes) and each worker reads the data from the store itself; the driver never does.
    Conservative: a Branch or Loop anywhere keeps the old path (resolve here, then ship)."""
    remote: set[str] = set()
    if not _remote_nodes(plan.root, remote):
        return False
    readers = [name for name, spec in plan.nodes.items() if ("in", None) in spec.sources]
    if not readers or any(name not in remote for name in readers):
        return False
    return not fitting or all(spec.stateless or name in remote for name, spec in plan.nodes.items())


def _remote_nodes(step: Any, found: set[str]) -> bool:
    """Collect the Remote steps' nodes; False when the plan holds a Branch or Loop."""
    from soma.plan import Branch, Loop, Parallel, Remote, Sequence

    if isinstance(step, Remote):
        found.add(step.node)
    elif isinstance(step, Sequence | Parallel):
        children = step.steps if isinstance(step, Sequence) else step.branches
        return all(_remote_nodes(child, found) for child in children)
    elif isinstance(step, Branch | Loop):
        return False
    return True


def _fingerprint(spec: NodeSpec) -> str:
    spec.fingerprint = filter_fingerprint(spec.filter)
    return spec.fingerprint


def ship_by_value(obj: Any) -> None:
    """Ship ``obj`` (a filter, a class, a function) by value when a worker could not import
    its module (see ``_ship_module``)."""
    module = getattr(obj, "__module__", None)
    _ship_module(module if isinstance(module, str) else type(obj).__module__)


def _ship_by_value(cls: type) -> None:
    _ship_module(cls.__module__ or "__main__")


@functools.cache
def _ship_module(module_name: str) -> None:
    """Classes and functions from modules a worker cannot import by name (a project's filter
    and metric files, loaded as synthetic ``_soma_*`` packages; files loaded by path) travel
    by value (cloudpickle), once per module. Soma itself, the standard library and installed
    packages go by reference (a worker has them); ``__main__`` and REPL code go by value
    already."""
    top = module_name.partition(".")[0]
    if module_name == "__main__" or not _needs_value(top):
        return
    import cloudpickle
    from ray import cloudpickle as ray_cloudpickle  # Ray pickles task arguments with its own copy

    # The whole package (a project's filters/ folder): its files import each other.
    for name, module in list(sys.modules.items()):
        if module is not None and (name == top or name.startswith(top + ".")):
            cloudpickle.register_pickle_by_value(module)
            ray_cloudpickle.register_pickle_by_value(module)


def _needs_value(top: str) -> bool:
    if top.startswith("_soma_"):
        return True  # soma.project._imports' synthetic packages
    if top in sys.builtin_module_names or top in sys.stdlib_module_names:
        return False
    if top in _SOMA_FACES:
        return False  # the worker runs Soma (the driver's version, see Lab.connect ship_soma)
    module = sys.modules.get(top)
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
    return not any(origin.startswith(folder) for folder in _installed_folders())


_SOMA_FACES = frozenset({"soma", "soma_tools", "soma_agent", "soma_mcp", "soma_tui"})


@functools.cache
def _installed_folders() -> tuple[str, ...]:
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    found = {paths.get(k, "") for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    found.update(site.getsitepackages())
    return tuple(sorted(p for p in found if p))
