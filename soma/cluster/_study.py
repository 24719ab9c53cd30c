"""Study trials on a cluster: ask / tell stay on the driver, each trial's evaluation is a job.

``Study(..., lab=lab, n_jobs=K)`` keeps K trials in flight. Each trial's graph is sampled and
built on the driver (the Optuna storage is untouched by workers), shipped to a worker with
the study's data (put once in Ray's object store per run, fetched once per worker node),
fitted, run and scored there by the same ``soma.experiments.evaluate``; the Evaluation or
its EvaluationError comes back and the driver records the trial, once. A worker lost
mid-trial makes Ray run the job again on another worker (``retries``); when retries run out
the trial fails with a WorkerLost naming what happened. The graph travels without its cache
(a worker has none of the driver's memory), and ``soma.study.report`` is a no-op on a
worker, so a study on a Lab takes no pruner.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from soma.cluster._jobs import Placement
from soma.experiments import EvaluationError, evaluate

__all__ = ["TRIAL_RETRIES", "evaluate_remote", "last_worker", "objective_remote"]

TRIAL_RETRIES = 3  # a trial whose worker died runs again elsewhere at most this often

_WORKER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "soma_trial_worker", default=None
)
_PUT_LOCK = threading.Lock()


def last_worker() -> str | None:
    """The worker that ran this thread's last remote trial (for the trial's record)."""
    return _WORKER.get()


def _data_ref(lab: Any, data: Any) -> Any:
    """The study's data in the object store: put once per Lab and data object."""
    import ray

    with _PUT_LOCK:
        puts = lab.__dict__.setdefault("_study_data", {})
        held = puts.get(id(data))
        if held is None or held[0] is not data:  # the object is held, so its id is not reused
            held = puts[id(data)] = (data, ray.put(data))
        return held[1]


def _evaluate_on_worker(graph: Any, data: Any, metrics: list) -> tuple[str, Any]:
    import ray

    if isinstance(data, ray.ObjectRef):
        data = ray.get(data)
    try:
        return "ok", evaluate(graph, data, metrics)
    except EvaluationError as exc:  # travels as parts: its default pickling would not
        return "error", (exc.stage, exc.cause, exc.reports)


def evaluate_remote(lab: Any, graph: Any, data: Any, metrics: list, what: str) -> Any:
    """``evaluate(graph, data, metrics)`` on a worker: the Evaluation, or its error raised."""
    _ship(graph, metrics)
    job = lab.submit_placed(
        _evaluate_on_worker, (graph, _data_ref(lab, data), list(metrics)), {},
        _ANY, what, retries=TRIAL_RETRIES,
    )  # fmt: skip
    try:
        kind, value = job.result()
    finally:
        _WORKER.set(job.worker)
    if kind == "error":
        stage, cause, reports = value
        raise EvaluationError(stage, cause, reports)
    return value


def objective_remote(lab: Any, objective: Any, graph: Any, what: str) -> Any:
    """``objective(graph)`` on a worker (the objective travels cloudpickled)."""
    _ship(graph, [], objective)
    job = lab.submit_placed(objective, (graph,), {}, _ANY, what, retries=TRIAL_RETRIES)
    try:
        return job.result()
    finally:
        _WORKER.set(job.worker)


def _ship(graph: Any, metrics: list, *extra: Any) -> None:
    """Project filter and metric files are not importable on a worker: send them by value."""
    from soma.cluster._node_step import ship_by_value

    for obj in (*graph.nodes.values(), *(getattr(m, "fn", None) for m in metrics), *extra):
        if obj is not None:
            ship_by_value(obj)


_ANY = Placement()  # one CPU and one Soma slot on any worker
