"""The knowledge-base tools: query, trajectories, change points, lines, reports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from soma.errors import KnowledgeBaseError, ValidationError
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError
from soma_tools._models_kb import (
    ChangePointRow,
    CreateResearchLineInput,
    CreateResearchLineOutput,
    DirectionChangeRow,
    ExperimentHit,
    GenerateReportInput,
    GenerateReportOutput,
    GetChangePointsInput,
    GetChangePointsOutput,
    GetTrajectoryInput,
    GetTrajectoryOutput,
    LineRow,
    ListResearchLinesInput,
    ListResearchLinesOutput,
    PromisingLinesInput,
    PromisingLinesOutput,
    QueryKnowledgeBaseInput,
    QueryKnowledgeBaseOutput,
    TrajectoryRow,
    short_text,
)

__all__ = [
    "change_point_rows",
    "create_research_line",
    "direction_change_rows",
    "existing_line",
    "experiment_hit",
    "generate_report",
    "get_change_points",
    "get_trajectory",
    "line_row",
    "line_uri",
    "list_research_lines",
    "promising_lines",
    "query_knowledge_base",
    "reports_root",
    "trajectory_row",
    "trend_name",
]

#: Lines shown by list_research_lines before the list is summarised.
LINES_LIMIT = 30
#: Report characters returned inline before the rest is left to the file / resource.
REPORT_LIMIT = 12_000
#: Improvement points shown by get_trajectory.
IMPROVEMENTS_LIMIT = 10
#: Change points shown by get_change_points (the latest).
CHANGE_POINTS_LIMIT = 25


def line_uri(name: str, suffix: str = "") -> str:
    """``soma://lines/<name><suffix>`` with the name percent-encoded (names may hold spaces)."""
    return f"soma://lines/{quote(name, safe='')}{suffix}"


def iso(value: Any) -> str | None:
    """A datetime (or anything) as ISO 8601 text."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


_KNOWN_SHOWN = 20  # line names an error lists; the rest are counted


def existing_line(ctx: ToolContext, name: str, *, field: str = "research_line") -> Any:
    """The named line; ToolError listing the known lines when it does not exist.

    The project's default line counts as existing (it is created on first use).
    """
    if name == ctx.default_line:
        return ctx.resolve_line(name, field=field)
    try:
        return ctx.kb.get_line(name)
    except KnowledgeBaseError:
        names = sorted(line.name for line in ctx.kb.lines())
        known = ", ".join(repr(n) for n in names[:_KNOWN_SHOWN]) or "none yet"
        if len(names) > _KNOWN_SHOWN:
            known += f", and {len(names) - _KNOWN_SHOWN} more (list_research_lines lists all)"
        raise ToolError(f"unknown research line {name!r} (known: {known})", field=field) from None


def experiment_hit(experiment: Any, score: float | None = None) -> ExperimentHit:
    metric = experiment.primary_metric
    value = (experiment.metrics or {}).get(metric) if metric else None
    return ExperimentHit(
        id=experiment.id,
        name=experiment.name,
        research_line=experiment.line,
        status=experiment.status,
        metric=metric,
        value=None if value is None else float(value),
        score=None if score is None else float(score),
        pipeline=short_text(experiment.pipeline_summary, 120),
        hypothesis=short_text(experiment.hypothesis),
        verdict=experiment.verdict,
        started=iso(experiment.started),
        error=short_text(experiment.error, 300),
        resource_uri=f"soma://experiments/{experiment.id}",
    )


def query_knowledge_base(
    ctx: ToolContext, inp: QueryKnowledgeBaseInput
) -> QueryKnowledgeBaseOutput:
    """Experiments by meaning (text) and/or exact filters, best match first."""
    if inp.research_line is not None:
        existing_line(ctx, inp.research_line)
    try:
        hits = ctx.kb.query(
            inp.text or None,
            line=inp.research_line,
            tags=inp.tags,
            status=inp.status,
            origin=inp.origin,
            where=inp.where,
            since=inp.since,
            until=inp.until,
            verdict=inp.verdict,
            k=inp.k,
        )
    except (KnowledgeBaseError, ValueError) as exc:
        field = getattr(exc, "field", None)  # soma's ValidationError names it already
        raise ToolError(str(exc), field=None if field else "where" if inp.where else None) from None
    scored = inp.text is not None and bool(inp.text.strip())
    novelty = None
    if scored:  # the same signal as KnowledgeBase.novelty, over whatever the filters keep
        top = hits[0].score if hits else None
        novelty = 1.0 if top is None else min(1.0, max(0.0, 1.0 - float(top)))
    return QueryKnowledgeBaseOutput(
        hits=[experiment_hit(h.experiment, h.score if scored else None) for h in hits],
        novelty=novelty,
    )


def get_trajectory(ctx: ToolContext, inp: GetTrajectoryInput) -> GetTrajectoryOutput:
    """The line's metric experiment after experiment, with the best so far and the trend."""
    line = existing_line(ctx, inp.research_line)
    stats = ctx.stats(line, inp.metric)
    points = stats.points
    improved: list[int] = []  # indices where the best so far changed
    for i, p in enumerate(points):
        if not improved or p.best_so_far != points[improved[-1]].best_so_far:
            improved.append(i)
    shown = range(max(0, len(points) - inp.limit), len(points))
    extra: dict[str, Any] = {}
    if inp.hypotheses:
        path = ctx.kb.hypothesis_trajectory(line.name)
        extra = {
            "hypothesis_drift": path.total_drift,
            "direction_changes": direction_change_rows(path)[-CHANGE_POINTS_LIMIT:],
            "hypotheses_uri": line_uri(line.name, "/hypotheses"),
        }
    return GetTrajectoryOutput(
        research_line=line.name,
        metric=stats.metric,
        direction=stats.direction,
        trend=stats.trend,
        total_points=len(points),
        best_value=stats.best_value,
        best_experiment_id=stats.best_experiment_id,
        improvements=[trajectory_row(i, points[i]) for i in improved[-IMPROVEMENTS_LIMIT:]],
        points=[trajectory_row(i, points[i]) for i in shown],
        resource_uri=line_uri(line.name, "/trajectory"),
        **extra,
    )


def direction_change_rows(path: Any) -> list[DirectionChangeRow]:
    """The direction changes of a HypothesisTrajectory as tool rows."""
    return [
        DirectionChangeRow(
            index=c.index,
            experiment_id=c.experiment_id,
            drift=float(c.drift),
            before_focus_id=c.before_focus_id,
            after_focus_id=c.after_focus_id,
            explanation=c.explanation,
        )
        for c in path.direction_changes
    ]


def trajectory_row(index: int, point: Any) -> TrajectoryRow:
    return TrajectoryRow(
        index=index,
        experiment_id=point.experiment_id,
        time=iso(point.time) or "",
        value=float(point.value),
        best_so_far=float(point.best_so_far),
    )


def trend_name(trend: Any) -> str:
    """'improving' / 'plateaued' / 'declining' / 'unknown' from a Trend (enum or text)."""
    value = getattr(trend, "value", trend)
    return str(value).lower() if value is not None else "unknown"


def get_change_points(ctx: ToolContext, inp: GetChangePointsInput) -> GetChangePointsOutput:
    """Where the line's metric shifted level, and what changed in the pipeline there."""
    line = existing_line(ctx, inp.research_line)
    rows = change_point_rows(ctx.kb.change_points(line.name))
    return GetChangePointsOutput(
        research_line=line.name,
        change_points=rows[-CHANGE_POINTS_LIMIT:],
        total=len(rows),
        resource_uri=line_uri(line.name),
    )


def change_point_rows(points: Any) -> list[ChangePointRow]:
    return [
        ChangePointRow(
            index=c.index,
            experiment_id=c.experiment_id,
            before_mean=float(c.before_mean),
            after_mean=float(c.after_mean),
            explanation=c.explanation or "",
        )
        for c in points
    ]


def line_row(ctx: ToolContext, line: Any) -> LineRow:
    """One line with its size, best value and trend."""
    stats = ctx.stats(line)
    return LineRow(
        name=line.name,
        metric=line.metric,
        direction=line.direction,
        description=line.description or "",
        n_experiments=stats.n_experiments,
        best_value=stats.best_value,
        best_experiment_id=stats.best_experiment_id,
        trend=stats.trend,
        resource_uri=line_uri(line.name),
    )


def list_research_lines(ctx: ToolContext, inp: ListResearchLinesInput) -> ListResearchLinesOutput:
    """Every research line with its metric, size, best value and trend."""
    lines = ctx.kb.lines()
    rows = [line_row(ctx, line) for line in lines[:LINES_LIMIT]]
    return ListResearchLinesOutput(
        lines=rows,
        total=len(lines),
        resource_uri="soma://lines" if len(lines) > LINES_LIMIT else None,
    )


def promising_lines(ctx: ToolContext, inp: PromisingLinesInput) -> PromisingLinesOutput:
    """The lines most worth another experiment, best first, with why."""
    rows = [
        LineRow(
            name=p.name,
            metric=p.metric,
            direction=p.direction,
            description=p.description,
            n_experiments=p.n_experiments,
            best_value=p.best_value,
            best_experiment_id=p.best_experiment_id,
            trend=trend_name(p.trend),
            reasons=list(p.reasons),
            resource_uri=line_uri(p.name),
        )
        for p in ctx.kb.promising_lines(k=inp.k)
    ]
    return PromisingLinesOutput(lines=rows)


def create_research_line(
    ctx: ToolContext, inp: CreateResearchLineInput
) -> CreateResearchLineOutput:
    """Create a research line; its metric defaults to the project's primary metric."""
    primary = ctx.project.metric
    metric = inp.metric or primary.name
    known = {m.name: m for m in ctx.project.metrics}
    if metric not in known:
        raise ToolError(
            f"the project computes no metric {metric!r} (soma.toml metrics: {', '.join(known)})",
            field="metric",
        )
    direction = inp.direction or known[metric].direction
    if direction != known[metric].direction:
        raise ToolError(
            f"{metric!r} is declared '{known[metric].direction}' in soma.toml, got {direction!r}",
            field="direction",
        )
    kb = ctx.kb
    try:
        kb.get_line(inp.name)
    except KnowledgeBaseError:
        pass
    else:
        raise ToolError(f"research line {inp.name!r} already exists", field="name")
    try:
        line = kb.create_line(
            inp.name, metric=metric, direction=direction, description=inp.description
        )
    except (KnowledgeBaseError, ValidationError) as exc:
        raise ToolError(str(exc), field="name") from None
    return CreateResearchLineOutput(line=line_row(ctx, line))


def reports_root(ctx: ToolContext) -> Path:
    """The project's reports folder, ``.soma/reports`` (where ``soma kb report`` writes too);
    each line's report is in its own folder below it (:func:`soma.knowledge.report_folder`)."""
    return ctx.project.state_dir / "reports"


def generate_report(ctx: ToolContext, inp: GenerateReportInput) -> GenerateReportOutput:
    """Write the line's Markdown report and plot; returns the text (cut when long)."""
    line = existing_line(ctx, inp.research_line)
    try:
        report = ctx.kb.generate_report(line.name, reports_root(ctx))
    except KnowledgeBaseError as exc:
        raise ToolError(str(exc), field="research_line") from None
    markdown = report.markdown
    cut = len(markdown) > REPORT_LIMIT
    return GenerateReportOutput(
        research_line=line.name,
        path=str(report.path),
        plot_path=str(report.plot_path) if report.plot_path else None,
        markdown=markdown[:REPORT_LIMIT] if cut else markdown,
        truncated=cut,
        resource_uri=f"soma://reports/{quote(line.name, safe='')}",
    )
