"""run_study: a real Optuna study over a pipeline, every trial recorded in the knowledge base."""

from __future__ import annotations

from typing import Any

from soma.errors import ProjectError, StudyError, ValidationError
from soma.vocabulary import Direction
from soma_tools._base import ProgressCallback
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError
from soma_tools._models_runs import RunStudyInput, RunStudyOutput, SpaceSpec, TrialRow
from soma_tools._pipeline_tool import build_graph, metric_for_line

__all__ = ["run_study", "to_search_space"]

#: Best trials listed in the result.
TOP_TRIALS = 10


def to_search_space(key: str, spec: SpaceSpec) -> Any:
    """A soma SearchSpace from a SpaceSpec; ToolError naming ``space.<key>`` when invalid."""
    from soma.space import search

    field = f"space.{key}"
    try:
        if spec.choices is not None:
            if spec.low is not None or spec.high is not None:
                raise ValueError("give either choices or low/high, not both")
            return search(choices=spec.choices)
        if spec.low is None or spec.high is None:
            raise ValueError("expected low and high, or choices")
        return search(spec.low, spec.high, log=spec.log, step=spec.step)
    except ValueError as exc:
        raise ToolError(str(exc), field=field) from None


def run_study(
    ctx: ToolContext, inp: RunStudyInput, *, progress: ProgressCallback | None = None
) -> RunStudyOutput:
    """Search the pipeline's hyperparameters; returns the best parameters and trial counts."""
    from soma.study import Study

    line = ctx.resolve_line(inp.research_line)
    metric = metric_for_line(ctx, line)
    graph = build_graph(ctx, inp.spec, inp.params, None)
    space = {k: to_search_space(k, v) for k, v in (inp.space or {}).items()} or None
    try:
        splits = ctx.splits()
    except ProjectError as exc:
        raise ToolError(f"the project's data could not be loaded: {exc}") from None
    lab = ctx.cluster()  # [cluster] address: trials run on its workers, ask/tell here
    pruner = None if inp.pruner == "none" or lab is not None else inp.pruner
    try:
        study = Study(
            graph,
            data=splits,  # with its fingerprint: trials record the project's data
            metric=metric,
            direction=metric.direction,
            sampler=inp.sampler,
            pruner=pruner,  # workers cannot reach the pruner: none on a cluster
            n_trials=inp.n_trials,
            timeout=inp.timeout,
            seed=inp.seed,
            name=inp.name,
            kb=ctx.kb,
            line=line.name,
            space=space,
            cache=ctx.cache,
            project=ctx.project,
            record_metrics=ctx.project.metrics,  # every declared metric, as run_pipeline
            lab=lab,
            n_jobs=_cluster_jobs(ctx, lab),
            evaluator=None if lab is not None else _evaluator(ctx, inp),
        )
    except ValidationError as exc:
        raise ToolError(str(exc).split(": ", 1)[-1], field=_input_field(exc.field)) from None

    total = inp.n_trials

    def on_trial(p: Any) -> None:
        if progress is None:
            return
        best = "-" if p.best_value is None else f"{p.best_value:.4g}"
        value = "-" if p.trial.value is None else f"{p.trial.value:.4g}"
        message = f"trial {p.trial.number} {p.trial.status} ({value}); best {best}"
        progress(p.done, p.total if p.total is not None else total, message)

    try:
        result = study.run(progress=on_trial)
    except StudyError as exc:
        raise ToolError(f"study {study.name}: {exc}") from None
    finally:
        ctx.line_stats.invalidate()  # every trial was recorded
    return _output(result, line.name, metric)


def _evaluator(ctx: ToolContext, inp: RunStudyInput) -> Any:
    """Trials evaluated in a worker process, under the trial limits (None: workers are off)."""
    if ctx.workers is None:
        return None
    limits = ctx.limits(inp.trial_timeout_s, inp.memory_mb)

    def evaluate(graph: Any, metrics: list[Any]) -> Any:
        from soma.study import current_trial

        trial = current_trial()
        what = f"trial {trial.number if trial else '?'} of the study"
        return ctx.evaluate(graph, metrics, limits=limits, what=what)[0]

    return evaluate


def _cluster_jobs(ctx: ToolContext, lab: Any) -> int:
    """Trials in flight: 1 here; on a cluster [cluster] n_jobs, else every worker slot."""
    if lab is None:
        return 1
    configured = ctx.project.config.cluster.n_jobs
    if configured is not None:
        return configured
    return max(1, int(sum(n["slots"] for n in lab.workers() if n["alive"])))


def _input_field(field: str) -> str:
    # Study's field names match the tool's, except that its graph is the tool's spec.
    return "spec" if field in ("graph", "metric") else field


def _output(result: Any, line: str, metric: Any) -> RunStudyOutput:
    sign = Direction(metric.direction).sign
    done = [t for t in result.trials if t.status == "ok" and t.value is not None]
    done.sort(key=lambda t: (-sign * t.value, t.number))
    best = result.best_trial
    new = set(result.new_trials)
    ran = [t for t in result.trials if t.number in new]
    counts: dict[str, int] = {}
    for t in ran:
        counts[t.status] = counts.get(t.status, 0) + 1
    return RunStudyOutput(
        study=result.name,
        research_line=line,
        metric=metric.name,
        direction=metric.direction,
        best_value=None if best is None else best.value,
        best_params=_jsonable(dict(best.params)) if best is not None else {},
        best_experiment_id=best.experiment_id if best is not None else None,
        n_trials=len(ran),
        total_trials=len(result.trials),
        trials_by_status=counts,
        duration_s=result.duration_s,
        top_trials=[
            TrialRow(
                number=t.number,
                status=t.status,
                value=t.value,
                params=_jsonable(dict(t.params)),
                experiment_id=t.experiment_id,
            )
            for t in done[:TOP_TRIALS]
        ],
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = repr(value)
    return out
