"""Search spaces for studies: from the graph's ``search()`` declarations, overridden or
extended by an explicit ``space``, with conditional "slots" (which filter fills a node).

``space`` entries, by key:

* ``"node.param": SearchSpace`` searches that range (``search(...)``, FloatRange, ...);
* ``"node.param": [a, b, c]`` searches those choices;
* ``"node.param": value`` fixes the parameter (not searched);
* ``"node": [LogReg, SVC(kernel="rbf")]`` makes ``node`` a slot: each trial picks one
  alternative (a Filter class or instance) and samples that alternative's own declared
  parameters only when it is chosen (Optuna names them ``node[LogReg].C``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soma.errors import ParamError, ValidationError
from soma.filter import Filter
from soma.space import Choice, FloatRange, IntRange, SearchSpace

if TYPE_CHECKING:
    import optuna

    from soma.graph import Graph

__all__ = ["Assignment", "Dimension", "SearchPlan", "Slot", "plan_space"]

_OPTUNA_PRIMITIVES = (type(None), bool, int, float, str)
_MAX_GRID = 1_000_000


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: Optuna's name for it, the ``node.param`` it sets, its space."""

    key: str
    target: str
    space: SearchSpace

    def _choice_codes(self) -> list[Any]:
        assert isinstance(self.space, Choice)
        choices = list(self.space.choices)
        if all(type(c) in _OPTUNA_PRIMITIVES for c in choices):
            return choices
        # Optuna persists only None/bool/int/float/str choices: store the others by repr.
        labels = [repr(c) for c in choices]
        if len(set(labels)) != len(labels):
            labels = [f"#{i}: {label}" for i, label in enumerate(labels)]
        return labels

    def decode(self, code: Any) -> Any:
        if not isinstance(self.space, Choice):
            return code
        codes = self._choice_codes()
        return self.space.choices[codes.index(code)]

    def suggest(self, trial: optuna.Trial) -> Any:
        s = self.space
        if isinstance(s, FloatRange):
            return trial.suggest_float(self.key, s.low, s.high, log=s.log, step=s.step)
        if isinstance(s, IntRange):
            return trial.suggest_int(self.key, s.low, s.high, log=s.log, step=s.step)
        if isinstance(s, Choice):
            return self.decode(trial.suggest_categorical(self.key, self._choice_codes()))
        raise ValidationError(f"space[{self.target!r}]", f"unsupported space {s!r}")

    def grid_codes(self) -> list[Any]:
        s = self.space
        if isinstance(s, Choice):
            return self._choice_codes()
        if isinstance(s, IntRange):
            return list(range(s.low, s.high + 1, s.step))
        if isinstance(s, FloatRange):
            if s.step is None:
                raise ValidationError(
                    f"space[{self.target!r}]",
                    f"the grid sampler needs a finite grid; {s.describe()} has no step. "
                    "Give it a step (search(low, high, step=...)), a list of values, or fix it",
                )
            count = int((s.high - s.low) / s.step + 1e-9)
            return [round(s.low + i * s.step, 12) for i in range(count + 1)]
        raise ValidationError(f"space[{self.target!r}]", f"unsupported space {s!r}")


@dataclass(frozen=True)
class Slot:
    """A node whose filter is chosen per trial among ``alternatives`` (label -> filter)."""

    node: str
    alternatives: dict[str, Filter]
    dims: dict[str, tuple[Dimension, ...]]


@dataclass
class Assignment:
    """One trial's configuration."""

    params: dict[str, Any] = field(default_factory=dict)  # searched: "node.param" / slot label
    graph_params: dict[str, Any] = field(default_factory=dict)  # for graph.with_params
    filters: dict[str, Filter] = field(default_factory=dict)  # slot node -> chosen filter


@dataclass(frozen=True)
class SearchPlan:
    dims: tuple[Dimension, ...]
    slots: tuple[Slot, ...]
    fixed: dict[str, Any]

    @property
    def is_empty(self) -> bool:
        return not self.dims and not self.slots

    def sample(self, trial: optuna.Trial) -> Assignment:
        out = Assignment(graph_params=dict(self.fixed))
        for dim in self.dims:
            value = dim.suggest(trial)
            out.params[dim.target] = value
            out.graph_params[dim.target] = value
        for slot in self.slots:
            label = trial.suggest_categorical(slot.node, list(slot.alternatives))
            out.params[slot.node] = label
            chosen: dict[str, Any] = {}
            for dim in slot.dims[label]:
                value = dim.suggest(trial)
                out.params[dim.target] = value
                chosen[dim.target.split(".", 1)[1]] = value
            alternative = slot.alternatives[label]
            out.filters[slot.node] = alternative.with_params(**chosen) if chosen else alternative
        return out

    def build(self, base: Graph, assignment: Assignment) -> Graph:
        graph = base
        for node, alternative in assignment.filters.items():
            graph = graph.with_filter(node, alternative)
        # with_params always returns a copy: each trial gets its own graph (and last_run).
        return graph.with_params(assignment.graph_params)

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration, as Optuna parameter dicts (slots expand to their union)."""
        factors: list[list[dict[str, Any]]] = [
            [{dim.key: code} for code in dim.grid_codes()] for dim in self.dims
        ]
        for slot in self.slots:
            options: list[dict[str, Any]] = []
            for label, dims in slot.dims.items():
                per_dim = [[(d.key, c) for c in d.grid_codes()] for d in dims]
                for combo in itertools.product(*per_dim):
                    options.append({slot.node: label, **dict(combo)})
            factors.append(options)
        size = 1
        for f in factors:
            size *= len(f)
        if size > _MAX_GRID:
            raise ValidationError("sampler", f"the grid has {size} points (limit {_MAX_GRID})")
        return [
            {k: v for part in combo for k, v in part.items()}
            for combo in itertools.product(*factors)
        ]

    def describe(self) -> dict[str, str]:
        out = {d.target: d.space.describe() for d in self.dims}
        for slot in self.slots:
            out[slot.node] = "one of " + ", ".join(slot.alternatives)
            for dims in slot.dims.values():
                out.update({d.key: d.space.describe() for d in dims})
        out.update({k: f"fixed at {v!r}" for k, v in self.fixed.items()})
        return out


def grid_point_key(params: Mapping[str, Any]) -> str:
    """A canonical key for one configuration (to skip grid points already run)."""
    return json.dumps(sorted(params.items()), default=repr)


def plan_space(graph: Graph, space: Mapping[str, Any] | None) -> SearchPlan:
    """The searched dimensions, slots and fixed values for ``graph`` (validated)."""
    nodes = graph.nodes
    entries: dict[str, SearchSpace] = dict(graph.search_space())
    fixed: dict[str, Any] = {}
    slots: dict[str, Slot] = {}
    if space is not None and not isinstance(space, Mapping):
        raise ValidationError("space", f"expected a dict, got {type(space).__name__}")
    for key, value in (space or {}).items():
        if not isinstance(key, str) or not key:
            raise ValidationError("space", f"keys are 'node.param' or 'node', got {key!r}")
        field_name = f"space[{key!r}]"
        node, _, param = key.partition(".")
        if node not in nodes:
            raise ValidationError(field_name, f"no node {node!r}; nodes: {', '.join(nodes)}")
        if not param:
            slots[node] = _make_slot(node, value, field_name)
            continue
        decls = type(nodes[node]).param_declarations()
        if param not in decls:
            known = ", ".join(sorted(decls)) or "none"
            raise ValidationError(
                field_name, f"{type(nodes[node]).__name__} has no parameter {param!r} ({known})"
            )
        entries.pop(key, None)
        if isinstance(value, SearchSpace):
            entries[key] = value
        elif isinstance(value, list):
            if not value:
                raise ValidationError(field_name, "expected at least one choice")
            entries[key] = Choice(tuple(value), value[0])
        else:
            fixed[key] = value
    for node in slots:
        clash = [k for k in (space or {}) if k.startswith(node + ".")]
        if clash:
            raise ValidationError(
                f"space[{clash[0]!r}]",
                f"{node!r} is a slot; its alternatives' parameters come from their own "
                "search() declarations (pass a configured instance to change them)",
            )
        entries = {k: v for k, v in entries.items() if not k.startswith(node + ".")}
    for key, value in {**entries, **fixed}.items():
        node, _, param = key.partition(".")
        _probe(nodes[node], param, value, f"space[{key!r}]")
    dims = tuple(Dimension(key, key, s) for key, s in entries.items())
    return SearchPlan(dims, tuple(slots.values()), fixed)


def _make_slot(node: str, value: Any, field_name: str) -> Slot:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(
            field_name, "a slot (key without '.param') takes a non-empty list of filters"
        )
    alternatives: dict[str, Filter] = {}
    for i, option in enumerate(value):
        if isinstance(option, type) and issubclass(option, Filter):
            try:
                option = option()
            except ParamError as exc:
                raise ValidationError(f"{field_name}[{i}]", str(exc)) from None
        if not isinstance(option, Filter):
            raise ValidationError(
                f"{field_name}[{i}]", f"expected a Filter class or instance, got {option!r}"
            )
        label, n = type(option).__name__, 2
        while label in alternatives:
            label, n = f"{type(option).__name__}_{n}", n + 1
        alternatives[label] = option
    dims = {
        label: tuple(
            Dimension(f"{node}[{label}].{param}", f"{node}.{param}", s)
            for param, s in type(f).search_space().items()
        )
        for label, f in alternatives.items()
    }
    return Slot(node, alternatives, dims)


def _probe(node_filter: Filter, param: str, value: Any, field_name: str) -> None:
    """Check the filter accepts the space's extreme values (or the fixed value) up front."""
    if isinstance(value, FloatRange | IntRange):
        if value.log and value.step not in (None, 1):
            raise ValidationError(field_name, "a log-scale range cannot have a step")
        probes = [value.low, value.high]
    elif isinstance(value, Choice):
        probes = list(value.choices)
    elif isinstance(value, SearchSpace):
        raise ValidationError(field_name, f"unsupported search space {value!r}")
    else:
        probes = [value]
    for probe in probes:
        try:
            node_filter.with_params(**{param: probe})
        except ParamError as exc:
            raise ValidationError(field_name, str(exc)) from None
