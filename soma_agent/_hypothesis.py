"""The typed things the loop passes around: a hypothesis and an observation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ActionKind",
    "ExpectedEffect",
    "Hypothesis",
    "LineSnapshot",
    "Observation",
    "ProposedHypothesis",
    "SimilarExperiment",
]

ActionKind = Literal["draft", "improve", "debug", "ablate", "tune"]
ExpectedEffect = Literal["improve", "no_change", "degrade"]


class ProposedHypothesis(BaseModel):
    """The next experiment, as a planner (or a language model) proposes it."""

    model_config = ConfigDict(extra="forbid")

    statement: str = Field(
        min_length=3,
        description="The claim the experiment tests, in one plain sentence, e.g. 'Whitening "
        "the PCA components helps the SVC'.",
    )
    rationale: str = Field(
        "", description="Why this is worth testing now, citing experiment ids when relevant."
    )
    spec: str | dict[str, Any] = Field(
        description="The pipeline to run: an expression over the project's filter names, e.g. "
        "\"StandardScale() >> PCA(n_components=16) >> LogReg(C=1.0)\" ('>>' chains, '|' "
        'forks, literal keyword arguments only), or a JSON object {"chain": [...]}.'
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Optional overrides {'node.param': value} on the built graph (node names "
        "are the snake_case class names); usually empty because the spec carries the values.",
    )
    expected_effect: ExpectedEffect = Field(
        "improve",
        description="What the hypothesis predicts against the parent experiment: 'improve' "
        "(a better metric), 'no_change' (e.g. removing a step does not hurt), or 'degrade'.",
    )
    action: ActionKind = Field(
        description="draft: a new pipeline; improve: better params for a known pipeline; "
        "debug: fix a failure; ablate: remove a step to see if it matters; tune: a "
        "hyperparameter study of n_trials trials."
    )
    parent_id: str | None = Field(
        None, description="The experiment this one is compared against (and derives from)."
    )
    n_trials: int = Field(
        1, ge=1, le=50, description="Trials of the study when action is 'tune'; else 1."
    )
    line: str | None = Field(
        None, description="Research line to file it under; omit for the run's line."
    )
    strategy: str | dict[str, Any] | None = Field(
        None,
        description="How the learning nodes are trained; omit to train locally. An object "
        "such as {'kind': 'data_parallel', 'num_replicas': 2}; only filters with the "
        "distributed-fitting protocol (init_state, partial_fit, merge) accept one.",
    )

    @field_validator("statement")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value) < 3:
            raise ValueError("statement must be a sentence")
        return value

    @field_validator("spec")
    @classmethod
    def _spec_not_empty(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, str) and not value.strip():
            raise ValueError("spec must not be empty")
        return value


class Hypothesis(ProposedHypothesis):
    """A proposed hypothesis with its id, line and origin: what the journal records."""

    id: str
    line: str | None = None
    source: str = Field("builtin", description="builtin, anthropic, openai, human, ...")
    injected_control_id: int | None = Field(
        None, description="For source 'human': the journal id of the inject command."
    )

    def journal_payload(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=False)
        for key in ("injected_control_id", "strategy"):  # journals read as before when unset
            if data.get(key) is None:
                data.pop(key, None)
        return data


class SimilarExperiment(BaseModel):
    """A past experiment close in meaning to ``query`` ("goal" or "pending: <statement>")."""

    id: str
    query: str = "goal"
    line: str | None = None
    score: float
    value: float | None = None
    status: str = ""
    hypothesis: str = ""
    pipeline: str = ""


class LineSnapshot(BaseModel):
    name: str
    metric: str
    direction: str
    trend: str = "unknown"
    n_experiments: int = 0
    best_value: float | None = None
    best_experiment_id: str | None = None
    best_pipeline: str | None = None


class Observation(BaseModel):
    """What the loop knows before each hypothesis (rendered for people and language models)."""

    goal: str
    line: str
    metric: str
    direction: str
    iteration: int
    n_experiments: int = Field(0, description="Experiments this run has recorded so far.")
    experiments_left: int = 0
    best_value: float | None = None
    best_experiment_id: str | None = None
    best_pipeline: str | None = None
    lines: list[LineSnapshot] = Field(default_factory=list)
    recent: list[dict[str, Any]] = Field(
        default_factory=list, description="The line's latest experiments (newest last)."
    )
    failures: list[dict[str, Any]] = Field(default_factory=list)
    similar: list[SimilarExperiment] = Field(default_factory=list)
    not_yet_searchable: int = Field(
        0, description="Experiments the similarity search could not see yet (being embedded)."
    )
    pending: list[dict[str, Any]] = Field(
        default_factory=list, description="Hypotheses not tested yet (e.g. injected by a person)."
    )
    filters: list[dict[str, Any]] = Field(default_factory=list)
    no_improvement_for: int = 0

    def summary(self) -> str:
        """One line for the journal and the progress display."""
        best = (
            f"best {self.metric} {self.best_value:.4g} ({self.best_experiment_id})"
            if self.best_value is not None
            else "no result yet"
        )
        return (
            f"iteration {self.iteration}: {self.n_experiments} experiment(s) in this run, "
            f"{best}, {len(self.failures)} recent failure(s), {len(self.filters)} filter(s)"
        )

    def render(self) -> str:
        """A Markdown page for a language model."""
        out = [
            f"# Goal\n{self.goal}",
            f"Research line: {self.line} (metric {self.metric}, {self.direction}).",
            f"Iteration {self.iteration}; this run recorded {self.n_experiments} experiment(s); "
            f"{self.experiments_left} left in the budget; no improvement for "
            f"{self.no_improvement_for} iteration(s).",
        ]
        if self.best_value is not None:
            out.append(
                f"Best so far: {self.metric} = {self.best_value:.4f} by experiment "
                f"{self.best_experiment_id}: {self.best_pipeline}"
            )
        if self.lines:
            out.append("## Research lines")
            for ln in self.lines:
                best = (
                    "-"
                    if ln.best_value is None
                    else f"{ln.best_value:.4f} ({ln.best_experiment_id})"
                )
                out.append(
                    f"- {ln.name}: {ln.n_experiments} experiment(s), trend {ln.trend}, best {best}"
                )
        if self.recent:
            out.append("## Latest experiments on the line (oldest first)")
            out.extend(_row(r) for r in self.recent)
        if self.failures:
            out.append("## Recent failures")
            out.extend(
                f"- {f['id']}: {f.get('pipeline', '')}: {f.get('error', '')}" for f in self.failures
            )
        if self.similar:
            out.append("## Past experiments similar to the goal and to pending hypotheses")
            out.extend(
                f"- {s.id} on line {s.line} (for {s.query}, similarity {s.score:.2f}): "
                f"{s.pipeline} -> {s.value} [{s.status}] {s.hypothesis}"
                for s in self.similar
            )
        if self.not_yet_searchable:
            out.append(
                f"({self.not_yet_searchable} newer experiment(s) were still being embedded and "
                "could not be searched by meaning; the latest ones are listed above.)"
            )
        if self.pending:
            out.append("## Pending hypotheses")
            out.extend(f"- {p.get('statement')} ({p.get('spec')})" for p in self.pending)
        if self.filters:
            out.append("## Filters (role: name(params) — doc)")
            for f in self.filters:
                params = ", ".join(f"{k}={v}" for k, v in f.get("params", {}).items())
                out.append(f"- {f.get('role')}: {f['name']}({params}) — {f.get('doc', '')}")
        return "\n\n".join(out[:3]) + "\n\n" + "\n".join(out[3:])


def _row(r: dict[str, Any]) -> str:
    verdict = f", verdict {r['verdict']}" if r.get("verdict") else ""
    return (
        f"- {r['id']} [{r.get('status')}] {r.get('action') or ''} value={r.get('value')}"
        f"{verdict}: {r.get('pipeline')}"
    )
