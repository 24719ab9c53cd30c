"""Settings of one agent run, validated at the boundary (errors name the field)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from soma.errors import ValidationError

__all__ = ["AgentResult", "AgentSettings"]


@dataclass
class AgentSettings:
    """What ``soma agent run`` was asked to do.

    ``patience``: stop after this many iterations without a new best on the line (None:
    never); ``max_iterations`` (None: ``2 * max_experiments + 10``) bounds iterations that
    record nothing (vetoes, invalid injections); ``target``: stop once the line's best
    reaches it (in the metric's direction).
    """

    goal: str
    max_experiments: int = 20
    budget_usd: float = 1.0
    planner: str = "builtin"
    approve: bool = False
    seed: int = 0
    line: str | None = None
    target: float | None = None
    patience: int | None = 10
    max_iterations: int | None = None
    poll_interval_s: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.goal, str) or not self.goal.strip():
            raise ValidationError("goal", "expected a non-empty sentence saying what to achieve")
        _int(self.max_experiments, "max_experiments", 1)
        if (
            isinstance(self.budget_usd, bool)
            or not isinstance(self.budget_usd, int | float)
            or (self.budget_usd < 0)
        ):
            raise ValidationError("budget_usd", f"expected a number >= 0, got {self.budget_usd!r}")
        _int(self.seed, "seed", None)
        if self.patience is not None:
            _int(self.patience, "patience", 1)
        if self.max_iterations is not None:
            _int(self.max_iterations, "max_iterations", 1)
        if self.target is not None and (
            isinstance(self.target, bool) or not isinstance(self.target, int | float)
        ):
            raise ValidationError("target", f"expected a number, got {self.target!r}")
        if self.poll_interval_s <= 0:
            raise ValidationError("poll_interval_s", "expected a positive number of seconds")
        from soma_agent._planner import parse_planner

        parse_planner(self.planner)

    @property
    def iteration_limit(self) -> int:
        return self.max_iterations or 2 * self.max_experiments + 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSettings:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _int(value: Any, name: str, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValidationError(name, f"expected an integer >= {minimum}, got {value}")


@dataclass
class AgentResult:
    """How a run ended. Every number refers to an experiment id of the knowledge base."""

    run_id: str
    status: str  # completed | stopped | failed
    reason: str
    n_experiments: int
    iterations: int
    best_experiment_id: str | None
    best_value: float | None
    report_path: str | None
    cost_usd: float = 0.0
    line: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
