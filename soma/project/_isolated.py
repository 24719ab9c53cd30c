"""A project's user code in a worker process: its data loader, its filters, its evaluations.

The same :func:`soma.experiments.evaluate` runs, only in a :class:`ProcessBackend` worker
that keeps the project, its data and its cache loaded between calls
(``soma.execution._worker.memo``). What the caller gets is what ``evaluate`` gives: an
Evaluation, or an :class:`~soma.experiments.EvaluationError` naming the stage with, as its
cause, an ExecutionError naming the node. A worker that dies, passes a limit or is cancelled
becomes that same error: the node named is the one that was running (the worker reports
each node as it starts), its cause a :class:`~soma.execution.WorkerError`.

Filter files are imported in the worker first (:func:`probe_filters`): a file whose import
hangs, exits or kills the worker is reported by name and never imported in the caller's
process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.execution._process import Limits, ProcessBackend, UserExit, WorkerError

if TYPE_CHECKING:
    from soma.experiments import Evaluation, MetricSpec, Splits
    from soma.graph import Graph
    from soma.project import Project

__all__ = ["evaluate_isolated", "load_splits_isolated", "probe_filters"]


# -- in the worker ----------------------------------------------------------------------------


def _project(root: str) -> Project:
    from soma.execution._worker import memo
    from soma.project import load_project

    return memo(("project", root), lambda: load_project(Path(root)))


def _splits(root: str, generation: int) -> Splits:
    from soma.execution._worker import emit, forget, memo

    emit(("stage", "data", None))
    # An older generation's data is dropped: reload_data() asked for the loader again.
    forget(lambda k: k[:2] == ("splits", root) and k[2] != generation)
    return memo(("splits", root, generation), _project(root).load_data)


def _load_splits_here(root: str, generation: int) -> Splits:
    try:
        return _splits(root, generation)
    except Exception as exc:  # the loader's own error, not ProjectError's wrapper
        raise _DataFailed(exc.__cause__ or exc) from None


class _DataFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(str(cause))


class _Tracker:
    """The nodes running now, from the graph's events (for errors the run cannot raise)."""

    def __init__(self) -> None:
        self.running: dict[str, str] = {}
        self.stage = "fit"

    def on_event(self, event: Any) -> None:
        from soma.execution._worker import emit

        if event.node is None:
            return
        if event.kind == "node_started":
            self.running[event.node] = event.phase
        else:
            self.running.pop(event.node, None)
        emit(("node", event.kind, (event.node, event.phase)))

    def failure(self, exc: BaseException) -> BaseException:
        from soma.errors import ExecutionError

        if not self.running:
            return exc
        node, phase = list(self.running.items())[-1]
        return ExecutionError(node, phase, exc)


def _evaluate_here(
    root: str,
    generation: int,
    graph_bytes: bytes,
    metric_names: list[str],
    seed: int | None,
    around: Callable[[], Any] | None,
    skip: dict[str, str],
) -> tuple[str, Any, str | None]:
    import pickle

    from soma.cache import Cache
    from soma.execution._worker import emit, memo
    from soma.experiments import EvaluationError, evaluate

    try:
        splits = _splits(root, generation)
    except Exception as exc:
        return "error", ("data", _framed(exc.__cause__ or exc), []), None
    from soma.project._discover import discover_filters

    project = _project(root)
    # The graph's classes live in the project's filter modules; files the caller found
    # hanging or fatal to import stay unimported here too.
    discover_filters(project.filters_dir, project.root, skip=skip)
    graph = pickle.loads(graph_bytes)
    graph.cache = memo(("cache", root), lambda: Cache(project.cache_dir))
    by_name = {m.name: m for m in project.metrics}
    metrics = [by_name[name] for name in metric_names]
    tracker = _Tracker()
    graph.on_event(tracker.on_event)
    if seed is not None:
        import random

        import numpy as np

        random.seed(seed)
        np.random.seed(seed % 2**32)

    def progress(stage: str) -> None:
        tracker.stage = stage
        emit(("stage", stage, None))

    try:
        with around() if around is not None else contextlib.nullcontext():
            evaluation = evaluate(graph, splits, metrics, progress=progress)
    except EvaluationError as exc:  # travels as parts: its default pickling would not
        return "error", (exc.stage, _framed(exc.cause), exc.reports), splits.fingerprint
    except BaseException as exc:
        failure = tracker.failure(UserExit.of(_framed(exc)))
        return "error", (tracker.stage, failure, []), splits.fingerprint
    return "ok", evaluation, splits.fingerprint


def _framed(exc: BaseException) -> BaseException:
    from soma.execution._worker import _keep_frames

    _keep_frames(exc)
    return exc


def _probe_here(root: str, skip: dict[str, str]) -> tuple[str, dict[str, str]]:
    from soma.execution._worker import emit
    from soma.project._discover import discover_filters

    project = _project(root)
    emit(("importing", None, None))  # the time limit counts per file from here
    catalog = discover_filters(
        project.filters_dir,
        project.root,
        refresh=True,
        skip=skip,
        on_file=lambda rel: emit(("importing", rel, None)),
    )
    return catalog.fingerprint, dict(catalog.errors)


# -- in the caller ----------------------------------------------------------------------------


@dataclass
class _Watch:
    """What the worker said it was doing: the stage, and the nodes running."""

    progress: Callable[[str], Any] | None = None
    stage: str = "data"
    file: str | None = None
    running: dict[str, str] = field(default_factory=dict)

    def on_event(self, event: Any) -> None:
        kind, what, detail = event
        if kind == "stage":
            self.stage = what
            if self.progress is not None and what != "data":
                self.progress(what)
        elif kind == "importing":
            self.file = what
        elif kind == "node":
            node, phase = detail
            if what == "node_started":
                self.running[node] = phase
            else:
                self.running.pop(node, None)

    def failure(self, exc: WorkerError) -> Any:
        from soma.errors import ExecutionError
        from soma.experiments import EvaluationError

        if self.running:
            node, phase = list(self.running.items())[-1]
            return EvaluationError(self.stage, ExecutionError(node, phase, exc), [])
        return EvaluationError(self.stage, exc, [])


def evaluate_isolated(
    backend: ProcessBackend,
    root: Path,
    graph: Graph,
    metrics: list[MetricSpec],
    *,
    seed: int | None = None,
    generation: int = 0,
    limits: Limits | None = None,
    progress: Callable[[str], Any] | None = None,
    what: str = "the evaluation",
    skip: dict[str, str] | None = None,
    around: Callable[[], Any] | None = None,
    on_ask: Callable[[Any], Any] | None = None,
) -> tuple[Evaluation, str | None]:
    """``evaluate(graph, <the project's data>, metrics)`` in a worker of ``backend``.

    Returns the Evaluation and the data's fingerprint. Raises EvaluationError (stage
    ``data`` when the loader failed); ``metrics`` must be metrics of the project at ``root``.
    ``skip``: filter files not to import (see :func:`probe_filters`). ``around()``: a
    context manager the evaluation runs in, in the worker (it travels cloudpickled: a study
    trial's relay, ``soma.study._intermediate.relay``); ``on_ask`` answers what code in the
    worker asks (``soma.execution._worker.ask``).
    """
    import cloudpickle

    from soma.experiments import EvaluationError

    watch = _Watch(progress)
    try:
        kind, value, fingerprint = backend.call(
            _evaluate_here,
            str(root),
            generation,
            cloudpickle.dumps(graph),
            [m.name for m in metrics],
            seed,
            around,
            dict(skip or {}),
            limits=limits,
            on_event=watch.on_event,
            on_ask=on_ask,
            what=what,
        )
    except WorkerError as exc:
        raise watch.failure(exc) from exc
    if kind == "error":
        stage, cause, reports = value
        raise EvaluationError(stage, cause, reports)
    return value, fingerprint


def load_splits_isolated(
    backend: ProcessBackend, root: Path, *, generation: int = 0, limits: Limits | None = None
) -> Splits:
    """The project's data, loaded by its loader in a worker (and kept there for later calls).

    Raises the loader's error (or a WorkerError) as ``DataLoadFailed`` with it as ``cause``.
    """
    try:
        return backend.call(
            _load_splits_here, str(root), generation, limits=limits, what="the data loader"
        )
    except _DataFailed as exc:
        raise DataLoadFailed(exc.cause) from None
    except WorkerError as exc:
        raise DataLoadFailed(exc) from None


class DataLoadFailed(WorkerError):
    """The project's data loader failed in its worker; ``cause`` is its error."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"the data loader failed: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[type[DataLoadFailed], tuple[BaseException]]:
        return (type(self), (self.cause,))


def probe_filters(
    backend: ProcessBackend, project: Project, *, timeout_s: float, rounds: int = 20
) -> dict[str, str]:
    """Import the project's filter files in a worker first; the files that must not be
    imported here (their import hung, exited or killed the worker), with the reason."""
    skip: dict[str, str] = {}
    for _ in range(rounds):
        watch = _Watch()
        try:
            backend.call(
                _probe_here,
                str(project.root),
                dict(skip),
                limits=Limits(timeout_s=timeout_s),
                on_event=watch.on_event,
                what="importing the filters folder",
                timeout_per_event=True,
            )
            return skip
        except WorkerError as exc:
            if watch.file is None or watch.file in skip:
                raise
            skip[watch.file] = _import_failure(watch.file, exc, timeout_s)
    return skip


def _import_failure(rel: str, exc: WorkerError, timeout_s: float) -> str:
    from soma.execution._process import LimitExceeded

    if isinstance(exc, LimitExceeded):
        return (
            f"{rel}: importing it did not finish within {timeout_s:g} s ([limits] "
            "import_timeout_s); not imported (a loop or a wait at module level?)"
        )
    with contextlib.suppress(Exception):
        return f"{rel}: importing it ended the process: {exc}; not imported"
    return f"{rel}: not imported"
