"""TPE over one model family: which scaler and reducer (or none) and which params.

A *family* is every pipeline ``[scaler] >> [reducer] >> MODEL`` for one model. Its search
space is conditional: ``scaler`` and ``reducer`` are categorical (with ``"none"``) and each
chosen filter brings its declared params (``"<Filter>.<param>"``). For a scale-invariant
model (a forest) a scaler straight before it changes nothing, so without a reducer the
family has no scaler slot: TPE does not spend trials on a no-op. The family's results in the
knowledge base are told to an Optuna study first (ask/tell), so TPE starts from everything
the line already knows about this model, not from scratch.
"""

from __future__ import annotations

from typing import Any

from soma.space import Choice, FloatRange, IntRange
from soma_agent._pipelines import Candidate, Step, contains, round_value, space_distribution

__all__ = ["FamilySpace", "tpe_propose"]

SAMPLERS = ("tpe", "random")

NONE = "none"


class FamilySpace:
    def __init__(
        self,
        model: str,
        scalers: list[str],
        reducers: list[str],
        classes: dict[str, type],
        *,
        invariant: bool = False,
    ) -> None:
        self.model = model
        self.invariant = invariant
        self.scalers = [NONE, *scalers]
        self.reducers = [NONE, *reducers]
        self.classes = classes

    def _slots(self, candidate: Candidate) -> tuple[str, str] | None:
        names = list(candidate.structure)
        if not names or names[-1] != self.model:
            return None
        pre = names[:-1]
        scaler = pre.pop(0) if pre and pre[0] in self.scalers else NONE
        reducer = pre.pop(0) if pre and pre[0] in self.reducers else NONE
        return None if pre else (scaler, reducer)

    def encode(self, candidate: Candidate) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Optuna params and distributions of a candidate; None if it is not in the family."""
        from optuna.distributions import CategoricalDistribution

        slots = self._slots(candidate)
        if slots is None:
            return None
        params: dict[str, Any] = {"reducer": slots[1]}
        dists: dict[str, Any] = {"reducer": CategoricalDistribution(self.reducers)}
        steps = list(candidate.steps)
        if self._scaler_slot(slots[1]):
            params["scaler"] = slots[0]
            dists["scaler"] = CategoricalDistribution(self.scalers)
        elif slots[0] != NONE:
            steps.pop(0)  # a no-op scaler: the same point of the space as without it
        for step in steps:
            for pname, space in self.classes[step.name].search_space().items():  # type: ignore[attr-defined]
                dist = space_distribution(space, step=False)
                value = step.param_dict.get(pname, space.default)
                if dist is None or not contains(dist, value):
                    return None
                key = f"{step.name}.{pname}"
                params[key], dists[key] = value, dist
        return params, dists

    def _scaler_slot(self, reducer: str) -> bool:
        return not self.invariant or reducer != NONE

    def canonical(self, candidate: Candidate) -> Candidate:
        """``candidate`` without a scaler that cannot change its result."""
        slots = self._slots(candidate)
        if slots is None or self._scaler_slot(slots[1]) or slots[0] == NONE:
            return candidate
        return Candidate(candidate.steps[1:])

    def suggest(self, trial: Any) -> Candidate:
        """Sample a candidate on an Optuna trial (define-by-run, so TPE sees the conditions)."""
        steps = []
        reducer = trial.suggest_categorical("reducer", self.reducers)
        scaler = (
            trial.suggest_categorical("scaler", self.scalers)
            if self._scaler_slot(reducer)
            else NONE
        )
        for name in (scaler, reducer, self.model):
            if name == NONE:
                continue
            values = []
            for pname, space in self.classes[name].search_space().items():  # type: ignore[attr-defined]
                key = f"{name}.{pname}"
                if isinstance(space, FloatRange):
                    value: Any = round_value(
                        trial.suggest_float(key, space.low, space.high, log=space.log)
                    )
                    value = min(max(value, space.low), space.high)
                elif isinstance(space, IntRange):
                    value = trial.suggest_int(key, space.low, space.high, log=space.log)
                elif isinstance(space, Choice):
                    value = trial.suggest_categorical(key, list(space.choices))
                else:
                    continue
                values.append((pname, value))
            steps.append(Step(name, tuple(sorted(values))))
        return Candidate(tuple(steps))


def tpe_propose(
    space: FamilySpace,
    history: list[tuple[Candidate, float | None]],
    direction: str,
    seed: int,
    *,
    draws: int = 1,
    n_ei_candidates: int = 24,
    sampler: str = "tpe",
) -> Candidate:
    """TPE's next candidate after telling it ``history`` (value None = failed); the
    ``draws``-th suggestion when earlier ones were already tried. ``sampler="random"``
    draws uniformly from the family's space instead (a seeded probe)."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {sampler!r}")
    chosen: Any
    if sampler == "random":
        chosen = optuna.samplers.RandomSampler(seed=seed)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # multivariate and group are "experimental"
            chosen = optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=1,
                multivariate=True,
                group=True,
                n_ei_candidates=n_ei_candidates,
            )
    study = optuna.create_study(direction=direction, sampler=chosen)
    state = optuna.trial.TrialState
    for candidate, value in history:
        encoded = space.encode(candidate)
        if encoded is None:
            continue
        params, dists = encoded
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=value,
                state=state.COMPLETE if value is not None else state.FAIL,
            )
        )
    candidate = None
    for _ in range(max(1, draws)):
        trial = study.ask()
        candidate = space.suggest(trial)
        study.tell(trial, state=state.FAIL)  # only the last draw is used; keep draws distinct
    assert candidate is not None
    return candidate
