"""Inputs and outputs of the tools that run or record experiments.

run_pipeline, run_study and record_experiment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from soma_tools._base import Action, Origin, Record, Status, ToolInput, ToolOutput
from soma_tools._render import fmt, markdown_table

#: A name holds at least one character that is not white space.
NOT_BLANK = r"\S"
#: A tag: not blank (the knowledge base refuses blank tags), bounded.
Tag = Annotated[str, StringConstraints(pattern=NOT_BLANK, max_length=200)]

__all__ = [
    "NodeRun",
    "RecordExperimentInput",
    "RecordExperimentOutput",
    "RunPipelineInput",
    "RunPipelineOutput",
    "RunStudyInput",
    "RunStudyOutput",
    "SpaceSpec",
    "TrialRow",
]

_SPEC_HELP = (
    "The pipeline: an expression string over the project's filter names, e.g. "
    "\"StandardScale() >> PCA(n_components=16) >> LogReg(C=1.0)\" ('>>' chains, '|' forks, "
    'literal arguments only), or a JSON object: {"chain": [...]}, {"fork": [...]}, '
    '{"filter": "PCA", "params": {...}}. Call list_filters for the names.'
)
_TIMEOUT_HELP = (
    "Wall-time limit in seconds for {what}: past it the worker process running it is stopped "
    "and the {kind} recorded as failed (default: [limits] timeout_s of soma.toml, else none)."
)
_MEMORY_HELP = (
    "Memory limit in MB for {what} (the worker process's resident memory, libraries and the "
    "loaded data included): past it the worker is stopped (default: [limits] memory_mb, "
    "else none)."
)


def _timeout_field(what: str, kind: str) -> Any:
    # The bounds of soma.toml's [limits] timeout_s (soma/project/_config.py).
    return Field(
        None, gt=0, le=7 * 24 * 3600, description=_TIMEOUT_HELP.format(what=what, kind=kind)
    )


def _memory_field(what: str) -> Any:
    return Field(None, ge=64, le=2**24, description=_MEMORY_HELP.format(what=what))


_LINE_HELP = (
    "Research line to file the experiment under (see list_research_lines). Omit it to use the "
    "project's default line. An unknown line is an error: create it with create_research_line."
)


class RunPipelineInput(ToolInput):
    """Fit a pipeline on the training split, score it on the validation split, record it."""

    spec: str | dict[str, Any] = Field(description=_SPEC_HELP)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides as {'node.param': value}, node names as in the built graph "
        "(snake_case of the class, e.g. {'pca.n_components': 32}).",
    )
    research_line: str | None = Field(None, description=_LINE_HELP)
    hypothesis: str = Field("", description="What this experiment tests, in one sentence.")
    name: str | None = Field(
        None,
        pattern=NOT_BLANK,
        max_length=200,
        description="Short experiment name (default: the pipeline).",
    )
    parent_id: str | None = Field(None, description="Experiment this one derives from.")
    action: Action = Field(Action.MANUAL, description="Why it was run: draft, improve, debug, ...")
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=100,
        description="Labels to find it by later, e.g. ['baseline', 'pca'].",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,  # numpy's and scikit-learn's seeds are 32-bit
        description="Random seed: sets numpy/random and every 'seed'/'random_state' param.",
    )
    idempotency_key: str | None = Field(
        None,
        description="Re-sending the same key returns the first run's result instead of rerunning.",
    )
    origin: Origin = Field(Origin.MCP, description="Who ran it (recorded with the experiment).")
    timeout_s: float | None = _timeout_field("loading data, fitting and scoring", "run")
    memory_mb: int | None = _memory_field("the run")
    strategy: str | dict[str, Any] | None = Field(
        None,
        description="How the learning nodes are trained (default: 'local'): an object with a "
        "kind (data_parallel, federated, model_parallel, population_based) and its settings, "
        "e.g. {'kind': 'data_parallel', 'num_replicas': 2, 'nodes': ['linear']}. Needs "
        "filters with the distributed-fitting protocol; recorded in params as strategy.*.",
    )


class NodeRun(Record):
    name: str
    fit_cache_hit: bool | None = None
    forward_cache_hit: bool | None = None
    duration_s: float = 0.0


class RunPipelineOutput(ToolOutput):
    experiment_id: str
    research_line: str
    pipeline: str = Field(description="One-line summary of the pipeline that ran.")
    metrics: dict[str, float]
    primary_metric: str
    value: float | None = Field(description="The primary metric on the validation split.")
    direction: str
    duration_s: float
    cache_hits: int
    cache_misses: int
    nodes: list[NodeRun] = Field(default_factory=list)
    best_experiment_id: str | None = Field(None, description="Best experiment of the line now.")
    best_value: float | None = None
    is_new_best: bool = Field(False, description="True when this run is the line's best.")
    replayed: bool = Field(False, description="True when an earlier run with this key answered.")

    def render(self) -> str:
        head = f"Experiment {self.experiment_id} on line '{self.research_line}'"
        if self.replayed:
            head += " (earlier result for this idempotency key; not rerun)"
        metrics = ", ".join(f"{k}={fmt(v)}" for k, v in self.metrics.items())
        best = "NEW BEST" if self.is_new_best else f"line best {fmt(self.best_value)}"
        return (
            f"{head}\n{self.pipeline}\n{self.primary_metric} = {fmt(self.value)} "
            f"({self.direction}; {best})\nmetrics: {metrics}\n"
            f"took {self.duration_s:.2f} s; cache {self.cache_hits} hit(s), "
            f"{self.cache_misses} miss(es)"
        )


class SpaceSpec(Record):
    """A search space: low/high (ints give an int range; log=True for a log scale) or choices."""

    low: int | float | None = Field(
        None, description="Lower bound (inclusive); two ints make an integer range."
    )
    high: int | float | None = Field(None, description="Upper bound (inclusive).")
    log: bool = Field(False, description="Sample on a log scale (low must be > 0).")
    step: int | float | None = Field(
        None, description="Grid step inside [low, high]; needed by the grid sampler."
    )
    choices: list[Any] | None = Field(
        None, description="A list of values to choose from, instead of low/high."
    )


class RunStudyInput(ToolInput):
    """Search hyperparameters of a pipeline with Optuna; every trial is recorded."""

    spec: str | dict[str, Any] = Field(description=_SPEC_HELP)
    space: dict[str, SpaceSpec] | None = Field(
        None,
        description="Search space as {'node.param': {'low': .., 'high': .., 'log': bool} or "
        "{'choices': [...]}}. Omit to search what the filters declare with search().",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Fixed overrides {'node.param': value} for every trial."
    )
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="Optuna sampler.")
    pruner: Literal["none", "median", "percentile"] = Field(
        "none", description="Stop unpromising trials early (for filters that report progress)."
    )
    n_trials: int = Field(20, ge=1, le=10_000, description="Number of trials.")
    timeout: float | None = Field(
        None, gt=0, description="Stop starting new trials after this many seconds."
    )
    research_line: str | None = Field(None, description=_LINE_HELP)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed of the sampler.")
    name: str | None = Field(
        None, pattern=NOT_BLANK, max_length=200, description="Study name (default: generated)."
    )
    trial_timeout_s: float | None = _timeout_field("each trial", "trial")
    memory_mb: int | None = _memory_field("each trial")


class TrialRow(Record):
    number: int
    status: str
    value: float | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    experiment_id: str | None = None


class RunStudyOutput(ToolOutput):
    study: str
    research_line: str
    metric: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_experiment_id: str | None = None
    n_trials: int = Field(description="Trials this call ran.")
    total_trials: int = Field(description="Trials of the study, with earlier runs of its name.")
    trials_by_status: dict[str, int] = Field(description="This call's trials by status.")
    duration_s: float
    top_trials: list[TrialRow] = Field(
        default_factory=list, description="The best trials, best first (bounded)."
    )

    def render(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.trials_by_status.items()))
        best = ", ".join(f"{k}={fmt(v)}" for k, v in self.best_params.items()) or "-"
        rows = [[t.number, t.status, t.value, t.experiment_id] for t in self.top_trials]
        table = markdown_table(["trial", "status", self.metric, "experiment"], rows)
        earlier = self.total_trials - self.n_trials
        before = f"; {earlier} from earlier runs" if earlier else ""
        return (
            f"Study {self.study} on line '{self.research_line}': {self.n_trials} trial(s) "
            f"({counts}{before}) in {self.duration_s:.1f} s\n"
            f"best {self.metric} = {fmt(self.best_value)} ({self.direction}) with {best}\n\n"
            f"{table}"
        )


class RecordExperimentInput(ToolInput):
    """Record an experiment run outside Soma, or set the verdict/notes/tags of an existing one."""

    id: str | None = Field(
        None,
        description="Existing experiment to update; then only verdict, notes and tags may be "
        "given (plus metrics/status to complete a running one).",
    )
    name: str | None = Field(
        None,
        pattern=NOT_BLANK,
        max_length=200,
        description="Short experiment name (default: the hypothesis or pipeline).",
    )
    hypothesis: str | None = Field(None, description="What the experiment tested, in a sentence.")
    research_line: str | None = Field(None, description=_LINE_HELP)
    pipeline_spec: str | dict[str, Any] | None = Field(
        None, description="The pipeline that ran, as a spec string or JSON object (free form)."
    )
    params: dict[str, Any] | None = Field(
        None, description="Hyperparameters as {'node.param': value}, e.g. {'pca.n_components': 16}."
    )
    metrics: dict[str, float] | None = Field(
        None, description="Metric values by name; should include the line's metric."
    )
    status: Status | None = Field(
        None,
        description="ok, failed, pruned or running (default: ok when metrics are given, else "
        "running).",
    )
    error: str | None = Field(None, description="What went wrong, for a failed experiment.")
    parent_id: str | None = Field(None, description="Experiment this one derives from.")
    action: Action | None = Field(
        None, description="Why it was run: draft, improve, debug, ablate, tune or manual."
    )
    tags: list[Tag] | None = Field(None, max_length=100, description="Labels to find it by later.")
    notes: str | None = Field(None, description="Free-text notes, e.g. the reason for a verdict.")
    seed: int | None = Field(
        None, ge=-(2**63), le=2**63 - 1, description="Random seed the run used, if any."
    )
    verdict: Literal["supported", "refuted", "inconclusive"] | None = Field(
        None, description="Conclusion about the hypothesis."
    )
    duration_s: float | None = Field(None, ge=0, description="How long it ran, in seconds.")
    idempotency_key: str | None = Field(
        None, description="Re-sending the same key returns the first record instead of a copy."
    )
    origin: Origin = Field(Origin.MCP, description="Who ran it: python, cli, mcp, agent or study.")

    @model_validator(mode="after")
    def _update_fields_only(self) -> RecordExperimentInput:
        if self.id is None:
            return self
        allowed = {"id", "verdict", "notes", "tags", "metrics", "status", "error", "origin"}
        given = {k for k in self.model_fields_set if getattr(self, k) is not None}
        extra = sorted(given - allowed)
        if extra:
            raise ValueError(
                f"when 'id' is given only {sorted(allowed - {'id', 'origin'})} can change; "
                f"remove {extra}"
            )
        return self


class RecordExperimentOutput(ToolOutput):
    experiment_id: str
    research_line: str
    created: bool = Field(
        description="False when an existing experiment was updated, or when its "
        "idempotency_key had been recorded before (the earlier record is returned)."
    )
    status: str
    value: float | None = Field(None, description="The line's metric, if recorded.")
    verdict: str | None = None

    def render(self) -> str:
        verb = "Recorded" if self.created else "Updated"
        verdict = f", verdict {self.verdict}" if self.verdict else ""
        return (
            f"{verb} experiment {self.experiment_id} on line '{self.research_line}' "
            f"(status {self.status}, value {fmt(self.value)}{verdict})"
        )
