"""A research line's history, read from the knowledge base for the built-in planner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from soma_agent._pipelines import Candidate, cached_candidate

__all__ = ["Trial", "experiment_value", "load_trials"]


@dataclass(frozen=True)
class Trial:
    experiment_id: str
    candidate: Candidate | None
    value: float | None
    status: str
    error: str | None
    action: str | None
    parent_id: str | None
    in_run: bool

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.value is not None


def experiment_value(experiment: Any, metric: str | None = None) -> float | None:
    """The experiment's primary metric (or ``metric``), None when it has none."""
    metrics = getattr(experiment, "metrics", None) or {}
    name = metric or getattr(experiment, "primary_metric", None)
    value = metrics.get(name) if name else None
    if value is None and getattr(experiment, "primary_metric", None):
        value = metrics.get(experiment.primary_metric)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def load_trials(
    kb: Any,
    line: str,
    metric: str,
    classes: dict[str, type],
    parse: Any,
    run_experiment_ids: set[str],
    fingerprint: str = "",
) -> list[Trial]:
    """Every finished experiment of ``line``, oldest first, as Trials."""
    trials = []
    for exp in kb.experiments(line=line, order="started"):
        if exp.status == "running":
            continue
        value = experiment_value(exp, metric)
        trials.append(
            Trial(
                experiment_id=exp.id,
                candidate=cached_candidate(exp, classes, parse, fingerprint),
                value=value,
                status=exp.status,
                error=exp.error,
                action=exp.action,
                parent_id=exp.parent_id,
                in_run=exp.id in run_experiment_ids,
            )
        )
    return trials
