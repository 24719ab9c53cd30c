"""Inputs and outputs of the knowledge-base tools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from soma_tools._base import Direction, Origin, Record, Status, ToolInput, ToolOutput
from soma_tools._render import fmt, markdown_table, more_rows_note, shorten

__all__ = [
    "ChangePointRow",
    "CreateResearchLineInput",
    "CreateResearchLineOutput",
    "DirectionChangeRow",
    "ExperimentHit",
    "GenerateReportInput",
    "GenerateReportOutput",
    "GetChangePointsInput",
    "GetChangePointsOutput",
    "GetTrajectoryInput",
    "GetTrajectoryOutput",
    "LineRow",
    "ListResearchLinesInput",
    "ListResearchLinesOutput",
    "PromisingLinesInput",
    "PromisingLinesOutput",
    "QueryKnowledgeBaseInput",
    "QueryKnowledgeBaseOutput",
    "TrajectoryRow",
]


class QueryKnowledgeBaseInput(ToolInput):
    """Find past experiments by meaning and/or by exact filters."""

    text: str | None = Field(
        None,
        description="What you are looking for, in words (semantic search over hypotheses, "
        "pipelines and notes). Omit to list the newest matching experiments.",
    )
    research_line: str | None = Field(None, description="Only this research line.")
    tags: list[str] | None = Field(None, description="Only experiments carrying all these tags.")
    status: Status | None = Field(None, description="Only this status.")
    origin: Origin | None = Field(None, description="Only experiments run from this origin.")
    where: str | None = Field(
        None,
        description='A condition on metrics or numeric params, e.g. "accuracy > 0.9 and '
        'params.pca.n_components >= 16" (and/or/not, > >= < <= == !=).',
    )
    since: str | None = Field(
        None, description="Only experiments started at/after: ISO 8601, or an age like '7d', '2h'."
    )
    until: str | None = Field(
        None, description="Only experiments started before: ISO 8601, or an age like '1d'."
    )
    verdict: Literal["supported", "refuted", "inconclusive"] | None = Field(
        None,
        description="Only experiments with this verdict. With text, verdict='refuted' and "
        "since='30d' the result's novelty says how new an idea is against recent refutations.",
    )
    k: int = Field(10, ge=1, le=50, description="How many experiments to return.")


class ExperimentHit(Record):
    id: str
    name: str | None = None
    research_line: str | None = None
    status: str
    metric: str | None = None
    value: float | None = Field(None, description="The experiment's primary metric.")
    score: float | None = Field(None, description="Similarity to the query text (higher = closer).")
    pipeline: str | None = None
    hypothesis: str | None = None
    verdict: str | None = None
    started: str | None = None
    error: str | None = None
    resource_uri: str = Field(description="soma:// resource with the whole experiment.")


class QueryKnowledgeBaseOutput(ToolOutput):
    hits: list[ExperimentHit]
    novelty: float | None = Field(
        None,
        description="With text: 1 - similarity of the closest match among the filtered "
        "experiments (1.0 when none matches); low means the idea was tried already.",
    )

    def render(self) -> str:
        if self.novelty is not None and not self.hits:
            return "No experiment matches (novelty 1.0)."
        if not self.hits:
            return "No experiment matches."
        rows = [
            [h.id, h.research_line, h.status, h.value, h.score, h.pipeline, h.hypothesis]
            for h in self.hits
        ]
        head = ["id", "line", "status", "value", "score", "pipeline", "hypothesis"]
        novelty = "" if self.novelty is None else f", novelty {self.novelty:.3f}"
        return f"{len(self.hits)} experiment(s){novelty}\n\n" + markdown_table(head, rows)


class GetTrajectoryInput(ToolInput):
    """How a research line's metric evolved, experiment after experiment."""

    research_line: str = Field(description="The research line (see list_research_lines).")
    metric: str | None = Field(None, description="Metric to follow (default: the line's metric).")
    limit: int = Field(20, ge=1, le=500, description="Most recent points to show.")
    hypotheses: bool = Field(
        False,
        description="Also the line's path through hypothesis space: drift and the direction "
        "changes of its experiments' embeddings (where its focus moved), each explained.",
    )


class DirectionChangeRow(Record):
    index: int
    experiment_id: str
    drift: float = Field(description="Cosine distance between the two sides' centres.")
    before_focus_id: str
    after_focus_id: str
    explanation: str


class TrajectoryRow(Record):
    index: int
    experiment_id: str
    time: str
    value: float
    best_so_far: float


class GetTrajectoryOutput(ToolOutput):
    research_line: str
    metric: str
    direction: str
    trend: str = Field(description="improving, plateaued, declining or unknown.")
    total_points: int
    best_value: float | None = None
    best_experiment_id: str | None = None
    improvements: list[TrajectoryRow] = Field(
        default_factory=list, description="Points that improved the best so far (bounded)."
    )
    points: list[TrajectoryRow] = Field(description="The most recent points, oldest first.")
    resource_uri: str
    hypothesis_drift: float | None = Field(
        None, description="Cosine distance from the line's first experiment to its last."
    )
    direction_changes: list[DirectionChangeRow] | None = Field(
        None, description="With hypotheses=true: where the focus moved (the latest, bounded)."
    )
    hypotheses_uri: str | None = None

    def render(self) -> str:
        text = self._metric_text()
        if self.direction_changes is None:
            return text
        rows = [[c.index, c.experiment_id, c.drift, c.explanation] for c in self.direction_changes]
        text += f"\n\nHypothesis space: drift {fmt(self.hypothesis_drift)} first → last; "
        if not rows:
            return text + "no direction change."
        table = markdown_table(["#", "experiment", "drift", "where the focus moved"], rows)
        return text + f"direction changes ({self.hypotheses_uri})\n\n{table}"

    def _metric_text(self) -> str:
        rows = [[p.index, p.experiment_id, p.time, p.value, p.best_so_far] for p in self.points]
        head = f"Line '{self.research_line}': {self.metric} ({self.direction}), trend {self.trend}"
        best = f"best {fmt(self.best_value)} ({self.best_experiment_id})"
        steps = " → ".join(fmt(p.value) for p in self.improvements) or "-"
        text = f"{head}; {self.total_points} point(s); {best}\nimprovements: {steps}\n\n"
        text += markdown_table(["#", "experiment", "time", "value", "best so far"], rows)
        return text + more_rows_note(len(self.points), self.total_points, self.resource_uri)


class GetChangePointsInput(ToolInput):
    """Where a research line's metric shifted level, and what changed there."""

    research_line: str = Field(description="The research line (see list_research_lines).")


class ChangePointRow(Record):
    index: int
    experiment_id: str
    before_mean: float
    after_mean: float
    explanation: str = ""


class GetChangePointsOutput(ToolOutput):
    research_line: str
    change_points: list[ChangePointRow] = Field(description="The latest ones (bounded).")
    total: int = Field(description="How many change points the line has.")
    resource_uri: str = Field(description="soma:// resource with the line and all of them.")

    def render(self) -> str:
        if not self.change_points:
            return f"Line '{self.research_line}': no change point detected."
        rows = [
            [c.index, c.experiment_id, c.before_mean, c.after_mean, c.explanation]
            for c in self.change_points
        ]
        head = ["#", "experiment", "mean before", "mean after", "what changed"]
        table = markdown_table(head, rows)
        note = more_rows_note(len(self.change_points), self.total, self.resource_uri)
        return f"Line '{self.research_line}'\n\n{table}{note}"


class LineRow(Record):
    name: str
    metric: str
    direction: str
    description: str = ""
    n_experiments: int = 0
    best_value: float | None = None
    best_experiment_id: str | None = None
    trend: str = "unknown"
    reasons: list[str] = Field(
        default_factory=list, description="Why it looks promising (promising_lines only)."
    )
    resource_uri: str = ""


class ListResearchLinesInput(ToolInput):
    """Every research line with its metric, size, best value and trend."""


class ListResearchLinesOutput(ToolOutput):
    lines: list[LineRow]
    total: int
    resource_uri: str | None = None

    def render(self) -> str:
        if not self.lines:
            return "No research line yet (create one with create_research_line)."
        rows = [
            [r.name, f"{r.metric} ({r.direction})", r.n_experiments, r.best_value, r.trend]
            for r in self.lines
        ]
        table = markdown_table(["line", "metric", "experiments", "best", "trend"], rows)
        return table + more_rows_note(len(self.lines), self.total, self.resource_uri)


class PromisingLinesInput(ToolInput):
    """The research lines most worth another experiment, best first."""

    k: int = Field(5, ge=1, le=50, description="How many lines to return.")


class PromisingLinesOutput(ToolOutput):
    lines: list[LineRow]

    def render(self) -> str:
        if not self.lines:
            return "No research line yet."
        rows = [
            [r.name, r.best_value, r.trend, r.n_experiments, "; ".join(r.reasons)]
            for r in self.lines
        ]
        return markdown_table(["line", "best", "trend", "experiments", "why"], rows)


class CreateResearchLineInput(ToolInput):
    """Start a research line: a question pursued with one metric and direction."""

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$",
        description="Short unique name (letters, digits, '_', '-', '.', spaces).",
    )
    description: str = Field("", description="The question this line pursues.")
    metric: str | None = Field(None, description="Metric name (default: the project's metric).")
    direction: Direction | None = Field(
        None, description="'maximize' or 'minimize' (default: the project's direction)."
    )


class CreateResearchLineOutput(ToolOutput):
    line: LineRow

    def render(self) -> str:
        r = self.line
        return f"Created research line '{r.name}': {r.metric} ({r.direction}). {r.description}"


class GenerateReportInput(ToolInput):
    """Write a Markdown report (with a plot) of a research line."""

    research_line: str = Field(description="The research line to report on.")


class GenerateReportOutput(ToolOutput):
    research_line: str
    path: str = Field(description="Markdown file written (absolute path).")
    plot_path: str | None = Field(None, description="PNG plot written (absolute path).")
    markdown: str = Field(description="The report (cut if long; the file has it all).")
    truncated: bool = False
    resource_uri: str

    def render(self) -> str:
        cut = f"\n\n(report cut; read {self.resource_uri} or {self.path})" if self.truncated else ""
        plot = f"; plot {self.plot_path}" if self.plot_path else ""
        return f"Report written to {self.path}{plot}\n\n{self.markdown}{cut}"


def short_text(value: Any, width: int = 160) -> str | None:
    """A one-line excerpt of a free-text field, or None."""
    if value is None:
        return None
    return shorten(" ".join(str(value).split()), width)
