"""What the built-in planner knows at one step: the line's history, roles, families.

Also the small helpers its strategies share (param perturbation, structural moves, how a
change is described in a hypothesis).
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

from soma_agent._history import Trial, load_trials
from soma_agent._hypothesis import Observation
from soma_agent._pipelines import Candidate, default_step
from soma_agent._planner import PlannerContext, PlannerError
from soma_agent._roles import infer_role

__all__ = [
    "SearchState",
    "describe_change",
    "failing_step",
    "fmt",
    "perturb_value",
    "structure_moves",
]

_PREFERRED_SCALER = "StandardScale"


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def failing_step(candidate: Candidate, error: str) -> int | None:
    match = re.search(r"node '([^']+)'", error)
    if not match:
        return None
    node = match.group(1).lower().replace("_", "")
    node = re.sub(r"\d+$", "", node)
    for i, step in enumerate(candidate.steps):
        if step.name.lower() == node:
            return i
    return None


def perturb_value(dist: Any, value: Any, rng: random.Random, scale: float) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        others = [c for c in dist.choices if c != value]
        return rng.choice(others) if others else value
    low, high = dist.low, dist.high
    if value is None:
        value = low
    if dist.log:
        x = math.log(value) + rng.gauss(0.0, scale)
        new = math.exp(min(max(x, math.log(low)), math.log(high)))
    else:
        new = value + rng.gauss(0.0, 0.25 * scale * (high - low))
        new = min(max(new, low), high)
    if isinstance(dist, IntDistribution):
        new = round(new)
        if new == value:
            new = (
                min(high, value + 1) if rng.random() < 0.5 or value == low else max(low, value - 1)
            )
        return new
    assert isinstance(dist, FloatDistribution)
    return new


def describe_change(old: Candidate, new: Candidate) -> str:
    parts = []
    if old.structure != new.structure:
        parts.append(f"the pipeline to {new.structure_text}")
    before = {step.name: step.param_dict for step in old.steps}
    for step in new.steps:
        prior = before.get(step.name)
        if prior is None:
            continue
        for key, value in step.params:
            if prior.get(key) != value:
                parts.append(f"{step.name}.{key} {_short(prior.get(key))}→{_short(value)}")
    return ", ".join(parts) or "the same settings"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return repr(value)


def structure_moves(best: Candidate, s: SearchState) -> list[tuple[Candidate, str, str, str]]:
    moves: list[tuple[Candidate, str, str, str]] = []
    model_index = len(best.steps) - 1
    for i, step in enumerate(best.steps[:-1]):
        moves.append(
            (
                best.without(i),
                "ablate",
                f"The {step.name} step matters: removing it from the best pipeline lowers "
                "{m} below {v} ({exp}).",
                "degrade",
            )
        )
    present = set(best.structure)
    for reducer in s.reducers:
        if reducer not in present:
            moves.append(
                (
                    best.inserted(model_index, default_step(reducer, s.classes[reducer])),
                    "improve",
                    f"Adding {reducer} before the model of the best pipeline improves on "
                    "{v} ({exp}).",
                    "improve",
                )
            )
    scaler_index = next(
        (i for i, st in enumerate(best.steps) if s.roles.get(st.name) == "scaler"), None
    )
    for scaler in s.scalers:
        if scaler in present:
            continue
        step = default_step(scaler, s.classes[scaler])
        if scaler_index is None:
            moves.append(
                (
                    best.inserted(0, step),
                    "improve",
                    f"Scaling the features with {scaler} first improves on {{v}} ({{exp}}).",
                    "improve",
                )
            )
        else:
            old = best.steps[scaler_index].name
            moves.append(
                (
                    best.replaced(scaler_index, step),
                    "improve",
                    f"{scaler} instead of {old} in the best pipeline improves on {{v}} ({{exp}}).",
                    "improve",
                )
            )
    rng = s.rng
    ablations = [m for m in moves if m[1] == "ablate"]
    others = [m for m in moves if m[1] != "ablate"]
    rng.shuffle(others)
    # Alternate: ablations first (cheap, informative), then additions and swaps.
    return ablations + others


class SearchState:
    """Everything one proposal needs, computed once."""

    def __init__(self, observation: Observation, ctx: PlannerContext) -> None:
        self.observation = observation
        self.ctx = ctx
        tools = ctx.tools
        catalog = tools.catalog()
        self.classes: dict[str, type] = catalog.classes()
        self.roles = {name: infer_role(info) for name, info in catalog.filters.items()}
        self.models = [n for n in catalog.names() if self.roles[n] == "model"]
        if not self.models:
            raise PlannerError(
                "the project has no model filter (a filter whose role is 'model': put it in "
                "models.py, or set _soma_role = 'model' on the class)"
            )
        self.scalers = [n for n in catalog.names() if self.roles[n] == "scaler"]
        self.reducers = [n for n in catalog.names() if self.roles[n] == "reducer"]
        self.scaler = (
            _PREFERRED_SCALER
            if _PREFERRED_SCALER in self.scalers
            else (self.scalers[0] if self.scalers else None)
        )
        run_ids = {str(h["experiment_id"]) for h in ctx.run_history if h.get("experiment_id")}
        self.parse = tools.project.parse_spec
        self.trials = load_trials(tools.kb, ctx.line, ctx.metric, self.classes, self.parse, run_ids)
        self.rng = random.Random(ctx.seed * 1_000_003 + ctx.iteration)
        self._tried = {t.candidate.params_key() for t in self.trials if t.candidate is not None}
        for h in ctx.run_history:
            cand = self.candidate_of(h)
            if cand is not None:
                self._tried.add(cand.params_key())
        self.structures = {t.candidate.structure for t in self.trials if t.candidate is not None}
        sign = 1.0 if ctx.direction == "maximize" else -1.0
        ok = [t for t in self.trials if t.ok and t.candidate is not None]
        self._sign = sign
        self.best_trial = max(ok, key=lambda t: sign * t.value) if ok else None  # type: ignore[operator]
        self.best_id = self.best_trial.experiment_id if self.best_trial else None

    @classmethod
    def build(cls, observation: Observation, ctx: PlannerContext) -> SearchState:
        return cls(observation, ctx)

    def candidate_of(self, entry: dict[str, Any]) -> Candidate | None:
        spec = entry.get("spec")
        if not spec:
            return None

        class _Exp:
            pipeline_spec = spec
            params = entry.get("params") or {}

        from soma_agent._pipelines import candidate_from_experiment

        return candidate_from_experiment(_Exp, self.classes, self.parse)

    def tried(self, candidate: Candidate) -> bool:
        return candidate.params_key() in self._tried

    def family_trials(self, family: str) -> list[Trial]:
        return [
            t
            for t in self.trials
            if t.candidate is not None and t.candidate.structure[-1] == family
        ]

    def ranked_families(self) -> list[str]:
        """Model families, best first by their best result."""
        best: dict[str, float] = {}
        for t in self.trials:
            if t.ok and t.candidate is not None:
                key = t.candidate.structure[-1]
                value = self._sign * t.value  # type: ignore[operator]
                best[key] = max(best.get(key, -math.inf), value)
        return sorted(best, key=lambda k: (-best[k], k))

    def family_best(self, family: str) -> Trial | None:
        ok = [t for t in self.family_trials(family) if t.ok]
        return max(ok, key=lambda t: self._sign * t.value) if ok else None  # type: ignore[operator]

    def stall(self, family: str) -> int:
        """Results of the family since its best one (how long it has not improved)."""
        members = self.family_trials(family)
        best = self.family_best(family)
        if best is None:
            return len(members)
        index = next(i for i, t in enumerate(members) if t.experiment_id == best.experiment_id)
        return len(members) - index - 1
