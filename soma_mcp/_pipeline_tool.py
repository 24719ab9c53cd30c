"""run_pipeline: fit on train, score on valid, record the experiment; and shared helpers."""

from __future__ import annotations

import contextlib
import os
import random
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import soma.errors
from soma.errors import ExecutionError, GraphError, ParamError, ProjectError, SomaError
from soma_mcp._base import ProgressCallback
from soma_mcp._context import ToolContext
from soma_mcp._errors import PipelineFailedError, ToolError
from soma_mcp._models_runs import NodeRun, RunPipelineInput, RunPipelineOutput
from soma_mcp._render import shorten

__all__ = ["build_graph", "metric_for_line", "run_pipeline", "user_traceback"]

_SEED_PARAMS = ("seed", "random_state")
# Frames in these folders are Soma's machinery, not the user's code.
_RUNTIME_DIRS = (
    str(Path(soma.errors.__file__).resolve().parent),
    str(Path(__file__).resolve().parent),
)
_SKIPPED_FRAMES = ("concurrent/futures", "threading.py", "contextvars")
#: Frames nearest the raise that a shortened traceback always keeps.
_RAISE_FRAMES = 3


def build_graph(
    ctx: ToolContext, spec: str | dict[str, Any], params: dict[str, Any], seed: int | None
) -> Any:
    """Parse ``spec`` with the project's filters and build a graph on the shared cache.

    Bad input becomes a ToolError naming ``spec``, ``params`` or ``seed``.
    """
    from soma.graph import Graph

    try:
        expr = ctx.project.parse_spec(spec)
    except (ProjectError, ParamError, GraphError) as exc:
        raise ToolError(str(exc), field="spec") from None
    try:
        graph = Graph.somatize(expr, cache=ctx.cache)
    except (GraphError, ParamError) as exc:
        raise ToolError(str(exc), field="spec") from None
    if params:
        try:
            graph = graph.with_params(params)
        except (ParamError, GraphError) as exc:
            raise ToolError(
                f"{exc} (node parameters: {_param_names(graph)})", field="params"
            ) from None
    if seed is not None:
        overrides = {
            f"{node}.{name}": seed
            for node, flt in graph.nodes.items()
            for name in _SEED_PARAMS
            if name in flt.params and f"{node}.{name}" not in params
        }
        if overrides:
            try:
                graph = graph.with_params(overrides)
            except (ParamError, GraphError) as exc:
                raise ToolError(str(exc), field="seed") from None
    return graph


def _param_names(graph: Any) -> str:
    names = list(graph.params)
    return ", ".join(names[:40]) + (", ..." if len(names) > 40 else "") or "none"


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
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if not f.filename.startswith(_RUNTIME_DIRS)
        and not any(s in f.filename for s in _SKIPPED_FRAMES)
    ] or list(frames)
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
    ctx: ToolContext, inp: RunPipelineInput, *, progress: ProgressCallback | None = None
) -> RunPipelineOutput:
    """Fit the pipeline on the training split, score it on the validation split, record it."""
    from soma.knowledge import Experiment, new_experiment_id

    line = ctx.resolve_line(inp.research_line)
    metric = metric_for_line(ctx, line)
    kb = ctx.kb
    graph = build_graph(ctx, inp.spec, inp.params, inp.seed)
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
        params=_jsonable_params(graph.params),
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
    exp_id = kb.record(experiment)
    if exp_id != my_id:  # the idempotency key was recorded before
        prior = kb.get(exp_id)
        if prior.status != "running":
            return _replay(ctx, prior, line)
        # An earlier attempt died while running: this run takes its record over.
        kb.update(exp_id, status="running", started=started, error=None)
    t0 = time.perf_counter()
    stage, reports, data_fingerprint = "data", [], None
    try:
        _progress(progress, 0, "loading data")
        splits = ctx.splits()
        data_fingerprint = splits.fingerprint
        if inp.seed is not None:
            _seed_globals(inp.seed)
        stage = "fit"
        _progress(progress, 1, "fitting on the training split")
        graph.fit(*splits.train)
        reports.append(graph.last_run)
        stage = "forward"
        _progress(progress, 2, "predicting the validation split")
        predicted = graph.forward(splits.valid[0])
        reports.append(graph.last_run)
        stage = "metric"
        _progress(progress, 3, "scoring")
        metrics = ctx.project.score(splits.valid[1], predicted)
        bad = {k: v for k, v in metrics.items() if v != v or v in (float("inf"), float("-inf"))}
        if bad:
            raise ValueError(f"metric(s) returned a non-finite value: {bad}")
    except Exception as exc:  # user code (data loader, filters, metric): record, then report
        duration = time.perf_counter() - t0
        raise _failed(ctx, exp_id, exc, stage, duration, reports, data_fingerprint) from exc
    duration = time.perf_counter() - t0
    try:
        kb.update(
            exp_id,
            status="ok",
            metrics=metrics,
            finished=_now(),
            duration_s=duration,
            cache_keys=_cache_keys(reports),
            data_fingerprint=data_fingerprint,
        )
    finally:
        ctx.line_stats.invalidate()
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


def _seed_globals(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)


def _failed(
    ctx: ToolContext,
    exp_id: str,
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
    with contextlib.suppress(SomaError):
        ctx.kb.update(
            exp_id,
            status="failed",
            error=f"{error}\n{tail}",
            finished=_now(),
            duration_s=duration,
            cache_keys=_cache_keys(reports),
            data_fingerprint=data_fingerprint,
        )
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


def _cache_keys(reports: list[Any]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for report in reports:
        for node, key in report.cache_keys.items():
            keys[f"{report.phase}.{node}"] = key
    return keys


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


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = list(value)
        else:
            out[key] = repr(value)
    return out
