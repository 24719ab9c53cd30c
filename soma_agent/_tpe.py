"""TPE over one model family: which scaler and reducer (or none) and which params.

A *family* is every pipeline ``[scaler] >> [reducer] >> MODEL`` for one model. Its search
space is conditional: ``scaler`` and ``reducer`` are categorical (with ``"none"``) and each
chosen filter brings its declared params (``"<Filter>.<param>"``). The family's results in the
knowledge base are told to an Optuna study first (ask/tell), so TPE starts from everything
the line already knows about this model, not from scratch.
"""

from __future__ import annotations

from typing import Any

from soma.space import Choice, FloatRange, IntRange
from soma_agent._pipelines import Candidate, Step, contains, round_value, space_distribution

__all__ = ["FamilySpace", "tpe_propose"]

NONE = "none"


class FamilySpace:
    def __init__(
        self, model: str, scalers: list[str], reducers: list[str], classes: dict[str, type]
    ) -> None:
        self.model = model
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
        params: dict[str, Any] = {"scaler": slots[0], "reducer": slots[1]}
        dists: dict[str, Any] = {
            "scaler": CategoricalDistribution(self.scalers),
            "reducer": CategoricalDistribution(self.reducers),
        }
        for step in candidate.steps:
            for pname, space in self.classes[step.name].search_space().items():  # type: ignore[attr-defined]
                dist = space_distribution(space, step=False)
                value = step.param_dict.get(pname, space.default)
                if dist is None or not contains(dist, value):
                    return None
                key = f"{step.name}.{pname}"
                params[key], dists[key] = value, dist
        return params, dists

    def suggest(self, trial: Any) -> Candidate:
        """Sample a candidate on an Optuna trial (define-by-run, so TPE sees the conditions)."""
        steps = []
        scaler = trial.suggest_categorical("scaler", self.scalers)
        reducer = trial.suggest_categorical("reducer", self.reducers)
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
) -> Candidate:
    """TPE's next candidate after telling it ``history`` (value None = failed); the
    ``draws``-th suggestion when earlier ones were already tried."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multivariate and group are "experimental" in Optuna
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=1,
            multivariate=True,
            group=True,
            n_ei_candidates=n_ei_candidates,
        )
    study = optuna.create_study(direction=direction, sampler=sampler)
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
