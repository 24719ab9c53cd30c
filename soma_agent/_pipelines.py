"""Linear pipelines as the built-in planner sees them: a structure plus each step's params.

A :class:`Candidate` is a chain of filter names with parameter values. It renders as a spec
string the project parses (``StandardScale() >> SVC(C=3.2, gamma=0.004)``), can be read
back from a recorded experiment, and maps its searchable parameters onto Optuna
distributions for TPE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from soma.space import Choice, FloatRange, IntRange, SearchSpace

__all__ = [
    "Candidate",
    "Step",
    "cached_candidate",
    "candidate_from_experiment",
    "distributions",
    "round_value",
]


@dataclass(frozen=True)
class Step:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def render(self) -> str:
        args = ", ".join(f"{k}={_literal(v)}" for k, v in self.params)
        return f"{self.name}({args})"


@dataclass(frozen=True)
class Candidate:
    """A chain of steps; ``structure`` (the names) identifies its family."""

    steps: tuple[Step, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def structure(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def structure_text(self) -> str:
        return " >> ".join(self.structure)

    def spec(self) -> str:
        return " >> ".join(s.render() for s in self.steps)

    def params_key(self) -> tuple[Any, ...]:
        return tuple((s.name, s.params) for s in self.steps)

    def with_step_params(self, index: int, params: dict[str, Any]) -> Candidate:
        steps = list(self.steps)
        merged = {**steps[index].param_dict, **params}
        steps[index] = Step(steps[index].name, tuple(sorted(merged.items())))
        return Candidate(tuple(steps))

    def without(self, index: int) -> Candidate:
        return Candidate(self.steps[:index] + self.steps[index + 1 :])

    def inserted(self, index: int, step: Step) -> Candidate:
        return Candidate((*self.steps[:index], step, *self.steps[index:]))

    def replaced(self, index: int, step: Step) -> Candidate:
        return Candidate((*self.steps[:index], step, *self.steps[index + 1 :]))


def _literal(value: Any) -> str:
    if isinstance(value, float):
        return repr(round_value(value))
    return repr(value)


def round_value(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (readable specs, stable keys)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def searchable(cls: type) -> dict[str, SearchSpace]:
    return dict(cls.search_space())  # type: ignore[attr-defined]


def default_step(name: str, cls: type) -> Step:
    """A step with the declared defaults of its searchable params."""
    space = searchable(cls)
    return Step(name, tuple(sorted((k, v.default) for k, v in space.items())))


def candidate_from_experiment(
    experiment: Any, classes: dict[str, type], parse: Any
) -> Candidate | None:
    """The chain an experiment ran, with every searchable param's value; None for non-chains.

    ``parse`` turns the stored spec into an expression (``project.parse_spec``); params
    recorded as ``{"node.param": value}`` overrides are applied through the runtime Graph.
    """
    spec = getattr(experiment, "pipeline_spec", None)
    if not spec:
        return None
    try:
        expr = parse(spec)
    except Exception:  # a spec from another project version: not a candidate
        return None
    filters = _chain_filters(expr)
    if filters is None:
        return None
    overrides = getattr(experiment, "params", None) or {}
    if overrides and any("." in str(k) for k in overrides):
        try:
            from soma import Graph

            graph = Graph.somatize(expr).with_params(
                {k: v for k, v in overrides.items() if "." in str(k)}
            )
            filters = list(graph.nodes.values())
        except Exception:
            pass  # full-graph params echoed back may not all be settable; the spec holds them
    steps = []
    for flt in filters:
        name = type(flt).__name__
        if name not in classes:
            return None
        space = searchable(type(flt))
        values = flt.params
        steps.append(Step(name, tuple(sorted((k, values[k]) for k in space))))
    return Candidate(tuple(steps))


#: (filters folder fingerprint, spec, params) -> Candidate; parsing a spec costs milliseconds
#: and the planner reads the whole line's history at every step.
_PARSED: dict[tuple[str, str, str], Candidate | None] = {}
_PARSED_MAX = 20_000


def cached_candidate(
    experiment: Any, classes: dict[str, type], parse: Any, fingerprint: str
) -> Candidate | None:
    """:func:`candidate_from_experiment`, memoized while the filters folder is unchanged."""
    import json

    spec = getattr(experiment, "pipeline_spec", None)
    params = getattr(experiment, "params", None) or {}
    try:
        key = (
            fingerprint,
            spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True),
            json.dumps(params, sort_keys=True, default=repr),
        )
    except (TypeError, ValueError):
        return candidate_from_experiment(experiment, classes, parse)
    if not fingerprint:
        return candidate_from_experiment(experiment, classes, parse)
    if key not in _PARSED:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = candidate_from_experiment(experiment, classes, parse)
    return _PARSED[key]


def _chain_filters(expr: Any) -> list[Any] | None:
    from soma._expr import Chain, Fork
    from soma.filter import Filter

    if isinstance(expr, Filter):
        return [expr]
    if isinstance(expr, Chain) and all(isinstance(s, Filter) for s in expr.steps):
        return list(expr.steps)
    if isinstance(expr, Chain | Fork):
        return None
    return None


def space_distribution(space: Any, *, step: bool = True) -> Any:
    """The Optuna distribution of a soma SearchSpace (None for choices Optuna cannot hold)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(space, FloatRange):
        use_step = space.step if step and not space.log else None
        return FloatDistribution(space.low, space.high, log=space.log, step=use_step)
    if isinstance(space, IntRange):
        return IntDistribution(
            space.low, space.high, log=space.log, step=1 if space.log or not step else space.step
        )
    if isinstance(space, Choice) and all(
        c is None or isinstance(c, bool | int | float | str) for c in space.choices
    ):
        return CategoricalDistribution(list(space.choices))
    return None


def distributions(candidate: Candidate, classes: dict[str, type]) -> dict[str, Any]:
    """Optuna distributions for every searchable param, named ``"<i>.<Filter>.<param>"``."""
    out: dict[str, Any] = {}
    for i, step in enumerate(candidate.steps):
        for pname, space in searchable(classes[step.name]).items():
            dist = space_distribution(space)
            if dist is not None:
                out[f"{i}.{step.name}.{pname}"] = dist
    return out


def flat_params(candidate: Candidate) -> dict[str, Any]:
    return {
        f"{i}.{step.name}.{k}": v for i, step in enumerate(candidate.steps) for k, v in step.params
    }


def apply_flat(candidate: Candidate, flat: dict[str, Any]) -> Candidate:
    """A copy of ``candidate`` with ``"<i>.<Filter>.<param>"`` values (floats rounded)."""
    per_step: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        index, _name, pname = key.split(".", 2)
        if isinstance(value, float):
            value = round_value(value)
        per_step.setdefault(int(index), {})[pname] = value
    out = candidate
    for index, params in per_step.items():
        out = out.with_step_params(index, params)
    return out


def contains(distribution: Any, value: Any) -> bool:
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except Exception:
        return False
