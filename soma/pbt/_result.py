"""What a PBT run produced: the final population, the lineage and the best schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LineageEvent", "Member", "PBTProgress", "PBTResult", "RoundSummary", "ScheduleStep"]


@dataclass(frozen=True)
class ScheduleStep:
    """The hyperparameters a checkpoint was trained with during one round."""

    round: int
    params: dict[str, Any]


@dataclass(frozen=True)
class LineageEvent:
    """In ``round``, ``member`` (score ``replaced_score``, None if it had failed) copied the
    state and hyperparameters of ``donor`` (score ``donor_score``), then explored from
    ``params_before`` to ``params_after``."""

    round: int
    member: int
    donor: int
    donor_score: float
    replaced_score: float | None
    params_before: dict[str, Any]
    params_after: dict[str, Any]


@dataclass(frozen=True)
class Member:
    """A member of the final population. ``schedule`` lists the hyperparameters its state
    was trained with, round by round (inherited from donors where it copied one)."""

    id: int
    params: dict[str, Any]
    score: float | None
    schedule: tuple[ScheduleStep, ...]
    error: str | None = None
    state: Any = field(default=None, repr=False, compare=False)
    experiment_id: str | None = None


@dataclass(frozen=True)
class RoundSummary:
    round: int
    best: float | None
    mean: float | None
    failed: int
    replaced: int
    duration_s: float


@dataclass(frozen=True)
class PBTProgress:
    """Sent to ``PBT.run(progress=...)`` after every round."""

    round: int  # 0-based, finished
    rounds: int
    summary: RoundSummary


@dataclass(frozen=True)
class PBTResult:
    """The final population (best first), the lineage, per-round figures."""

    name: str
    metric: str
    direction: str
    node: str
    population: tuple[Member, ...]
    lineage: tuple[LineageEvent, ...]
    rounds: tuple[RoundSummary, ...]
    duration_s: float
    workers: int
    parallel: bool
    fallback_reason: str | None = None
    initial_params: tuple[dict[str, Any], ...] = ()  # member i's round-0 hyperparameters

    @property
    def best(self) -> Member:
        return self.population[0]

    @property
    def best_value(self) -> float | None:
        return self.best.score

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params)

    def member(self, member_id: int) -> Member:
        for m in self.population:
            if m.id == member_id:
                return m
        raise KeyError(f"PBT {self.name!r} has no member {member_id}")

    @property
    def schedule(self) -> tuple[ScheduleStep, ...]:
        """The best member's hyperparameter schedule."""
        return self.best.schedule

    def summary(self) -> str:
        failed = sum(1 for m in self.population if m.score is None)
        best = f"{self.best_value:.6g}" if self.best_value is not None else "none"
        return (
            f"PBT {self.name!r}: {len(self.population)} members x {len(self.rounds)} rounds on "
            f"node {self.node!r}; best {self.metric}={best} (member {self.best.id}); "
            f"{len(self.lineage)} exploits; {failed} failed at the end"
        )

    def to_dict(self) -> dict[str, Any]:
        from soma.study._result import jsonable

        return jsonable(
            {
                "name": self.name,
                "metric": self.metric,
                "direction": self.direction,
                "node": self.node,
                "best_member": self.best.id,
                "best_value": self.best_value,
                "best_params": self.best_params,
                "schedule": [{"round": s.round, "params": s.params} for s in self.schedule],
                "population": [
                    {
                        "id": m.id,
                        "params": m.params,
                        "score": m.score,
                        "error": m.error,
                        "experiment_id": m.experiment_id,
                    }
                    for m in self.population
                ],
                "lineage": [vars(e) for e in self.lineage],
                "rounds": [vars(r) for r in self.rounds],
                "duration_s": self.duration_s,
                "workers": self.workers,
                "parallel": self.parallel,
                "fallback_reason": self.fallback_reason,
            }
        )

    def __str__(self) -> str:
        return self.summary()
