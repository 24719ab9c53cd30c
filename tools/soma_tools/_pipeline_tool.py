"""run_pipeline: fit on train, score on valid, record the experiment; and shared helpers."""

from __future__ import annotations

import os
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import soma.errors
from soma.errors import ExecutionError, ProjectError, ValidationError
from soma.execution._faults import crash_point
from soma.experiments import (
    EvaluationError,
    ExperimentRun,
    cache_keys,
    experiment_params,
)
from soma_tools._base import ProgressCallback
from soma_tools._context import ToolContext, seed_globals
from soma_tools._errors import PipelineFailedError, ToolError
from soma_tools._models_runs import NodeRun, RunPipelineInput, RunPipelineOutput
from soma_tools._render import shorten

__all__ = ["build_graph", "metric_for_line", "run_pipeline", "user_traceback"]

_SEED_PARAMS = ("seed", "random_state")
# Frames in these folders are Soma's machinery, not the user's code.
_RUNTIME_DIRS = (
    str(Path(soma.errors.__file__).resolve().parent),
    str(Path(__file__).resolve().parent),
)
_SKIPPED_FRAMES = ("concurrent/futures", "threading.py", "contextvars")
#: Progress steps of an evaluation's stages.
_STEPS = {
    "fit": (1, "fitting on the training split"),
    "forward": (2, "predicting the validation split"),
    "metric": (3, "scoring"),
}
#: Frames nearest the raise that a shortened traceback always keeps.
_RAISE_FRAMES = 3


def build_graph(
    ctx: ToolContext,
    spec: str | dict[str, Any],
    params: dict[str, Any],
    seed: int | None,
    strategy: str | dict[str, Any] | None = None,
) -> Any:
    """Parse ``spec`` with the project's filters and build a graph on the shared cache.

    Bad input becomes a ToolError naming ``spec``, ``params``, ``seed`` or ``strategy``.
    """
    from soma.experiments import build_graph as build

    try:
        return build(
            spec, project=ctx.project, params=params, seed=seed, cache=ctx.cache, strategy=strategy
        )
    except ValidationError as exc:
        raise ToolError(exc.message, field=exc.field) from None


def metric_for_line(ctx: ToolContext, line: Any) -> Any:
    """The project's MetricSpec for the line's metric; ToolError when it has none of that name."""
    for metric in ctx.project.metrics:
        if metric.name == line.metric:
            return metric
    known = ", ".join(m.name for m in ctx.project.metrics)
    raise ToolError(
        f"research line {line.name!r} follows metric {line.metric!r}, which this project does "
        f"not compute (soma.toml metrics: {known})",
        field="research_line",
    )


def user_traceback(exc: BaseException, *, root: Path | None = None, max_frames: int = 8) -> str:
    """The useful end of a traceback: the frames of user code (not Soma's), then the error.

    When more than ``max_frames`` remain, the frames nearest the raise are kept together
    with the last frames inside the project ``root`` (the code the user can fix), which a
    deep library stack would otherwise push out; a marker says how many were left out.
    """
    # An error from a worker process carries its frames (tracebacks do not pickle).
    frames = getattr(exc, "__soma_frames__", None) or traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if not f.filename.startswith(_RUNTIME_DIRS)
        and not any(s in f.filename for s in _SKIPPED_FRAMES)
    ]
    if not own:  # nothing of the user's to show (a worker that died, a limit): no frames
        return "\n".join(line.rstrip("\n") for line in traceback.format_exception_only(exc))
    keep = set(range(len(own)))
    if len(own) > max_frames:
        tail = min(_RAISE_FRAMES, max_frames)
        keep = set(range(len(own) - tail, len(own)))
        prefix = str(root.resolve()) + os.sep if root is not None else None
        mine = [
            i
            for i in range(len(own) - tail)
            if prefix is not None and os.path.abspath(own[i].filename).startswith(prefix)
        ]
        keep.update(mine[-(max_frames - tail) :] if max_frames > tail else [])
    lines = ["Traceback (most recent call last, user code):"]
    previous = -1
    for i in sorted(keep):
        if i != previous + 1:
            lines.append(f"  ... {i - previous - 1} frame(s) left out ...")
        lines.extend(line.rstrip("\n") for line in traceback.format_list([own[i]]))
        previous = i
    lines.extend(line.rstrip("\n") for line in traceback.format_exception_only(exc))
    return "\n".join(lines)


def _now() -> datetime:
    return datetime.now(UTC)


def run_pipeline(
    ctx: ToolContext,
    inp: RunPipelineInput,
    *,
    progress: ProgressCallback | None = None,
    on_evaluation: Any = None,
) -> RunPipelineOutput:
    """Fit the pipeline on the training split, score it on the validation split, record it.

    ``on_evaluation(experiment_id, evaluation)`` (Python callers only) sees the Evaluation
    of a successful run before it is recorded, e.g. to keep per-sample losses.
    """
    from soma.knowledge import Experiment, new_experiment_id

    line = ctx.resolve_line(inp.research_line)
    metric = metric_for_line(ctx, line)
    kb = ctx.kb
    graph = build_graph(ctx, inp.spec, inp.params, inp.seed, inp.strategy)
    summary = graph.summary()
    started = _now()
    my_id = new_experiment_id()
    experiment = Experiment(
        id=my_id,
        name=inp.name or shorten(summary, 120),
        hypothesis=inp.hypothesis,
        line=line.name,
        pipeline_spec=inp.spec,
        pipeline_summary=summary,
        params=experiment_params(graph),  # with the strategy, unless Local
        primary_metric=metric.name,
        direction=metric.direction,
        status="running",
        parent_id=inp.parent_id,
        action=inp.action,
        tags=list(inp.tags),
        started=started,
        code_fingerprint=graph.fingerprint(),
        seed=inp.seed,
        origin=inp.origin,
        idempotency_key=inp.idempotency_key,
    )
    lab = ctx.cluster()  # [cluster] address: the evaluation runs on a worker
    run = ExperimentRun.start(kb, experiment)
    if run.replayed is not None:  # the idempotency key was recorded before
        return _replay(ctx, run.replayed, line)
    exp_id = run.id
    crash_point("pipeline.recorded")
    t0 = time.perf_counter()
    stage, reports, data_fingerprint = "data", [], None
    # The project's metrics, the line's first: evaluate scores them all.
    metrics_spec = [metric, *(m for m in ctx.project.metrics if m.name != metric.name)]
    try:
        _progress(progress, 0, "loading data")
        if lab is None:
            # In a worker process, under the project's [limits] or the call's own: whatever
            # the user's loader or filters do comes back here as an error naming the node.
            evaluation, data_fingerprint = ctx.evaluate(
                graph,
                metrics_spec,
                seed=inp.seed,
                limits=ctx.limits(inp.timeout_s, inp.memory_mb),
                progress=lambda s: _progress(progress, *_STEPS[s]),
                what=f"experiment {exp_id}",
            )
        else:
            from soma.cluster._study import evaluate_remote

            splits = ctx.splits()
            data_fingerprint = splits.fingerprint
            if inp.seed is not None:
                seed_globals(inp.seed)
            _progress(progress, *_STEPS["fit"])
            evaluation = evaluate_remote(lab, graph, splits, metrics_spec, f"experiment {exp_id}")
    except EvaluationError as exc:  # user code (loader, filters, metric): record, then report
        duration = time.perf_counter() - t0
        raise _failed(
            ctx, run, exc.cause, exc.stage, duration, exc.reports, data_fingerprint
        ) from exc.cause
    except Exception as exc:  # the data loader
        duration = time.perf_counter() - t0
        raise _failed(ctx, run, exc, stage, duration, reports, data_fingerprint) from exc
    except BaseException as exc:  # interrupted here (Ctrl-C): the record must not stay running
        run.fail(f"interrupted: {type(exc).__name__}", duration_s=time.perf_counter() - t0)
        ctx.line_stats.invalidate()
        raise
    duration = time.perf_counter() - t0
    crash_point("pipeline.evaluated")
    if on_evaluation is not None:
        on_evaluation(exp_id, evaluation)
    reports = evaluation.reports
    metrics = {m.name: evaluation.metrics[m.name] for m in ctx.project.metrics}
    try:
        run.succeed(
            metrics,
            duration_s=duration,
            cache_keys=evaluation.cache_keys,
            data_fingerprint=data_fingerprint,
        )
    finally:
        ctx.line_stats.invalidate()
    crash_point("pipeline.closed")
    stats = ctx.stats(line)  # also warms the cache get_trajectory reads next
    return RunPipelineOutput(
        experiment_id=exp_id,
        research_line=line.name,
        pipeline=summary,
        metrics=metrics,
        primary_metric=metric.name,
        value=metrics[metric.name],
        direction=metric.direction,
        duration_s=duration,
        cache_hits=sum(r.cache_hits for r in reports),
        cache_misses=sum(r.cache_misses for r in reports),
        nodes=_node_runs(reports),
        best_experiment_id=stats.best_experiment_id,
        best_value=stats.best_value,
        is_new_best=stats.best_experiment_id == exp_id,
    )


def _progress(progress: ProgressCallback | None, step: int, message: str) -> None:
    if progress is not None:
        progress(step, 4, message)


def _failed(
    ctx: ToolContext,
    run: ExperimentRun,
    exc: Exception,
    stage: str,
    duration: float,
    reports: list[Any],
    data_fingerprint: str | None,
) -> PipelineFailedError:
    if isinstance(exc, ExecutionError):
        node, phase, cause = exc.node, exc.phase, exc.cause
    else:
        node, phase, cause = stage, stage, exc
    if isinstance(exc, ProjectError) and stage == "data":
        node, cause = "data", exc.__cause__ or exc
    tail = user_traceback(cause, root=ctx.root)
    error = f"node {node!r} failed during {phase}: {type(cause).__name__}: {cause}"
    ctx.line_stats.invalidate()
    # Recording is best effort: the original failure is what the caller needs to see.
    run.fail(
        f"{error}\n{tail}",
        duration_s=duration,
        cache_keys=cache_keys(reports),
        data_fingerprint=data_fingerprint,
    )
    exp_id = run.id
    return PipelineFailedError(
        f"{error}\n\n{tail}\n\nRecorded as failed experiment {exp_id}.",
        node=node,
        experiment_id=exp_id,
        traceback_tail=tail,
    )


def _replay(ctx: ToolContext, prior: Any, line: Any) -> RunPipelineOutput:
    if prior.status == "failed":
        raise PipelineFailedError(
            f"{prior.error}\n\n(earlier failed run {prior.id} for this idempotency key)",
            node="(earlier run)",
            experiment_id=prior.id,
            traceback_tail="",
        )
    if prior.line and prior.line != line.name:
        line = ctx.kb.get_line(prior.line)
    stats = ctx.stats(line)
    metric = prior.primary_metric or line.metric
    value = _value_of(prior, metric)
    return RunPipelineOutput(
        experiment_id=prior.id,
        research_line=prior.line,
        pipeline=prior.pipeline_summary or "",
        metrics=dict(prior.metrics),
        primary_metric=metric,
        value=value,
        direction=prior.direction or line.direction,
        duration_s=prior.duration_s or 0.0,
        cache_hits=0,
        cache_misses=0,
        best_experiment_id=stats.best_experiment_id,
        best_value=stats.best_value,
        is_new_best=stats.best_experiment_id == prior.id,
        replayed=True,
    )


def _value_of(experiment: Any, metric: str) -> float | None:
    if experiment is None:
        return None
    value = (experiment.metrics or {}).get(metric)
    return None if value is None else float(value)


def _node_runs(reports: list[Any]) -> list[NodeRun]:
    rows: dict[str, NodeRun] = {}
    for report in reports:
        for name, node in report.nodes.items():
            row = rows.setdefault(name, NodeRun(name=name))
            row.duration_s += node.duration_s
            if report.phase == "fit":
                row.fit_cache_hit = node.cache_hit
            else:
                row.forward_cache_hit = node.cache_hit
    return list(rows.values())[:50]
