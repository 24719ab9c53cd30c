"""What the built-in planner knows at one step: the line's history, roles, families.

Also the small helpers its strategies share (param perturbation, structural moves, how a
change is described in a hypothesis).
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

from soma.vocabulary import Direction
from soma_agent._history import Trial, load_trials
from soma_agent._hypothesis import Observation
from soma_agent._losses import LossStore
from soma_agent._paired import paired_test
from soma_agent._pipelines import Candidate, default_step
from soma_agent._planner import PlannerContext, PlannerError
from soma_agent._roles import infer_role, scale_invariant
from soma_agent._verdict import RELATIVE_FLOOR

__all__ = [
    "SearchState",
    "describe_change",
    "failing_step",
    "fmt",
    "local_step",
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
    """A random step from ``value`` within ``dist``.

    An integer that rounds back to ``value`` stays there (the caller sees an unchanged
    candidate and draws again): a forced +-1 nudge (``n_estimators`` 100 -> 101) is a
    move that changes nothing measurable, not an experiment worth its cost.
    """
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
        return round(new)
    assert isinstance(dist, FloatDistribution)
    return new


def local_step(
    best: Candidate, s: SearchState, *, scale: float = 0.5, draws: int = 12
) -> Candidate | None:
    """A neighbour of ``best`` (same structure, one or two params moved by
    :func:`perturb_value`) not measured yet; None when ``draws`` tries find none."""
    from soma_agent._pipelines import round_value, searchable, space_distribution

    slots = []
    for index, step in enumerate(best.steps):
        for pname, space in searchable(s.classes[step.name]).items():
            dist = space_distribution(space, step=False)
            if dist is not None:
                slots.append((index, pname, dist, step.param_dict.get(pname, space.default)))
    if not slots:
        return None
    rng = s.rng
    for _ in range(draws):
        moved = best
        for index, pname, dist, value in rng.sample(slots, min(len(slots), rng.choice((1, 2)))):
            new = perturb_value(dist, value, rng, scale)
            moved = moved.with_step_params(
                index, {pname: round_value(new) if isinstance(new, float) else new}
            )
        if moved.params_key() != best.params_key() and not s.tried(moved):
            return moved
    return None


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
    """Structural changes of the best pipeline worth an experiment, ablations first.

    Moves that cannot change the result are not offered: a scaler straight in front of a
    scale-invariant model (a forest) is neither ablated nor swapped.
    """
    moves: list[tuple[Candidate, str, str, str]] = []
    model_index = len(best.steps) - 1
    invariant = best.steps[-1].name in s.invariant
    scaler_index = next(
        (i for i, st in enumerate(best.steps) if s.roles.get(st.name) == "scaler"), None
    )
    noop_scaler = invariant and scaler_index == model_index - 1
    for i, step in enumerate(best.steps[:-1]):
        if noop_scaler and i == scaler_index:
            continue
        moves.append(
            (
                best.without(i),
                "ablate",
                f"The {step.name} step can be removed from the best pipeline without "
                "lowering {m} below {v} ({exp}).",
                "no_change",
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
    scaler_matters = not invariant or any(s.roles.get(n) == "reducer" for n in best.structure)
    for scaler in s.scalers if scaler_matters else ():
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
    # Ablations first (cheap, informative), then additions and swaps.
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
        self.invariant = {n for n in self.models if scale_invariant(self.classes[n])}
        run_ids = {str(h["experiment_id"]) for h in ctx.run_history if h.get("experiment_id")}
        self.parse = tools.project.parse_spec
        self.fingerprint = catalog.fingerprint
        self.trials = load_trials(
            tools.kb, ctx.line, ctx.metric, self.classes, self.parse, run_ids, self.fingerprint
        )
        self.rng = random.Random(ctx.seed * 1_000_003 + ctx.iteration)
        self.losses = LossStore(tools.project.state_dir)
        self._tried = {self.key(t.candidate) for t in self.trials if t.candidate is not None}
        for h in ctx.run_history:
            cand = self.candidate_of(h)
            if cand is not None:
                self._tried.add(self.key(cand))
        self.structures = {t.candidate.structure for t in self.trials if t.candidate is not None}
        sign = Direction(ctx.direction).sign
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

        from soma_agent._pipelines import cached_candidate

        return cached_candidate(_Exp, self.classes, self.parse, self.fingerprint)

    def key(self, candidate: Candidate) -> tuple[Any, ...]:
        """Identity of a candidate's result: a scaler straight before a scale-invariant
        model is left out (with or without it, the predictions are the same)."""
        steps = candidate.steps
        if (
            len(steps) >= 2
            and steps[-1].name in self.invariant
            and self.roles.get(steps[-2].name) == "scaler"
        ):
            candidate = Candidate(steps[:-2] + steps[-1:])
        return candidate.params_key()

    def tried(self, candidate: Candidate) -> bool:
        return self.key(candidate) in self._tried

    def family_trials(self, family: str) -> list[Trial]:
        return [
            t
            for t in self.trials
            if t.candidate is not None and t.candidate.structure[-1] == family
        ]

    def ranked_families(self) -> list[str]:
        """Model families with a result, best first by their best result."""
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

    def beyond_noise(self, new: Trial, old: Trial) -> bool:
        """Whether ``new`` is better than ``old`` by more than the measurement's noise.

        With both per-sample losses kept: the paired mean loss difference is below minus one
        standard error (lenient on purpose: a plateau is declared only when gains are not
        distinguishable from noise). Without them: the gain passes 0.1 % of the old value.
        """
        assert new.value is not None and old.value is not None
        gain = self._sign * (new.value - old.value)
        if gain <= 0:
            return False
        a, b = self.losses.get(new.experiment_id), self.losses.get(old.experiment_id)
        if a is not None and b is not None and a.shape == b.shape:
            test = paired_test(a, b)
            return test.loss_delta < -max(test.standard_error, 1e-12)
        return gain > max(RELATIVE_FLOOR * abs(old.value), 1e-12)

    def stall(self, family: str) -> int:
        """Results of the family since it last improved beyond noise (its plateau length)."""
        anchor: Trial | None = None
        since = 0
        for t in self.family_trials(family):
            if t.ok and (anchor is None or self.beyond_noise(t, anchor)):
                anchor, since = t, 0
            else:
                since += 1
        return since
