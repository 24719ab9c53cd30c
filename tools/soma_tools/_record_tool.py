"""record_experiment: file an experiment run elsewhere, or conclude an existing one."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pydantic

from soma.errors import KnowledgeBaseError, ValidationError
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError, describe_validation_error
from soma_tools._models_runs import RecordExperimentInput, RecordExperimentOutput
from soma_tools._render import shorten

__all__ = ["record_experiment"]

_UPDATABLE = ("verdict", "notes", "tags", "metrics", "status", "error")


def record_experiment(ctx: ToolContext, inp: RecordExperimentInput) -> RecordExperimentOutput:
    """Record a new experiment, or (with ``id``) set verdict / notes / tags / results of one."""
    _check_metrics(inp.metrics)
    if inp.id is not None:
        return _update(ctx, inp)
    line = ctx.resolve_line(inp.research_line)
    metrics = dict(inp.metrics or {})
    status = inp.status or ("ok" if metrics else "running")
    if status == "ok" and line.metric not in metrics:
        raise ToolError(
            f"an 'ok' experiment on line {line.name!r} needs its metric {line.metric!r} "
            f"(got {sorted(metrics) or 'no metrics'})",
            field="metrics",
        )
    summary = _summary(inp.pipeline_spec)
    try:
        experiment = _experiment(inp, line, status, metrics, summary)
    except pydantic.ValidationError as exc:
        raise ToolError(describe_validation_error("record_experiment", exc)) from None
    try:
        exp_id = ctx.kb.record(experiment)
    except (KnowledgeBaseError, ValidationError) as exc:
        raise ToolError(str(exc)) from None
    finally:
        ctx.line_stats.invalidate()
    # A different id means the idempotency key was stored before: nothing new was written.
    return _output(ctx.kb.get(exp_id), created=exp_id == experiment.id)


def _experiment(
    inp: RecordExperimentInput,
    line: Any,
    status: str,
    metrics: dict[str, float],
    summary: str | None,
) -> Any:
    from soma.knowledge import Experiment, new_experiment_id

    now = datetime.now(UTC)
    return Experiment(
        id=new_experiment_id(),
        name=inp.name or shorten(inp.hypothesis or summary or "manual experiment", 120),
        hypothesis=inp.hypothesis or "",
        line=line.name,
        pipeline_spec=inp.pipeline_spec,
        pipeline_summary=summary or "",
        params=dict(inp.params or {}),
        metrics=metrics,
        primary_metric=line.metric,
        direction=line.direction,
        status=status,
        error=inp.error,
        parent_id=inp.parent_id,
        action=inp.action or "manual",
        tags=list(inp.tags or []),
        notes=inp.notes or "",
        started=now,
        finished=None if status == "running" else now,
        duration_s=inp.duration_s,
        seed=inp.seed,
        origin=inp.origin,
        verdict=inp.verdict,
        idempotency_key=inp.idempotency_key,
    )


def _update(ctx: ToolContext, inp: RecordExperimentInput) -> RecordExperimentOutput:
    kb = ctx.kb
    try:
        current = kb.get(inp.id)
    except KnowledgeBaseError as exc:
        raise ToolError(str(exc), field="id") from None
    changes: dict[str, Any] = {
        name: getattr(inp, name) for name in _UPDATABLE if getattr(inp, name) is not None
    }
    if not changes:
        raise ToolError(
            "nothing to change: give verdict, notes, tags, metrics or status", field="id"
        )
    if "metrics" in changes:
        changes["metrics"] = {**(current.metrics or {}), **changes["metrics"]}
    if changes.get("status") not in (None, "running") and current.finished is None:
        changes["finished"] = datetime.now(UTC)
    try:
        updated = kb.update(inp.id, **changes)
    except (KnowledgeBaseError, ValidationError) as exc:
        raise ToolError(str(exc), field="id") from None
    finally:
        ctx.line_stats.invalidate()
    return _output(updated, created=False)


def _output(experiment: Any, *, created: bool) -> RecordExperimentOutput:
    metric = experiment.primary_metric
    value = (experiment.metrics or {}).get(metric) if metric else None
    return RecordExperimentOutput(
        experiment_id=experiment.id,
        research_line=experiment.line,
        created=created,
        status=experiment.status,
        value=None if value is None else float(value),
        verdict=experiment.verdict,
    )


def _check_metrics(metrics: dict[str, float] | None) -> None:
    for name, value in (metrics or {}).items():
        if not math.isfinite(value):
            raise ToolError(
                f"metric {name!r} is {value}; expected a finite number", field="metrics"
            )


def _summary(spec: str | dict[str, Any] | None) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return shorten(" ".join(spec.split()), 300)
    return shorten(json.dumps(spec, sort_keys=True), 300)
