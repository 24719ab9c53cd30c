"""Checking a PBT run's arguments: numbers in range, the iterative node, its space."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from soma.errors import ValidationError
from soma.pbt._iterative import is_iterative
from soma.space import Choice, SearchSpace

__all__ = ["check_factors", "check_fraction", "find_node", "node_space"]


def check_fraction(
    value: Any, field_name: str, low: float, high: float, *, low_open: bool = False
) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > low if low_open else value >= low) and value <= high:
        return float(value)
    bracket = "(" if low_open else "["
    raise ValidationError(
        field_name, f"expected a number in {bracket}{low}, {high}], got {value!r}"
    )


def check_factors(factors: Any) -> tuple[float, ...]:
    if (
        not isinstance(factors, list | tuple)
        or not factors
        or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and math.isfinite(f) and f > 0
            for f in factors
        )
    ):
        raise ValidationError(
            "perturb_factors", f"expected a non-empty list of numbers > 0, got {factors!r}"
        )
    return tuple(float(f) for f in factors)


def find_node(graph: Any, node: str | None) -> str:
    nodes = graph.nodes
    if node is None:
        candidates = [n for n, f in nodes.items() if is_iterative(f)]
        if len(candidates) != 1:
            found = ", ".join(candidates) if candidates else "none"
            raise ValidationError(
                "node",
                "PBT needs exactly one node that trains in steps (a soma.pbt.IterativeFilter "
                f"with partial_fit(x, y, state, steps) -> state); found {found}"
                + ("; name one with node=" if candidates else ""),
            )
        node = candidates[0]
    elif node not in nodes:
        raise ValidationError("node", f"no node {node!r}; nodes: {', '.join(nodes)}")
    flt = nodes[node]
    if not is_iterative(flt):
        raise ValidationError(
            "node",
            f"{node!r} ({type(flt).__name__}) does not train in steps: subclass "
            "soma.pbt.IterativeFilter and implement init_state(x, y) and "
            "partial_fit(x, y, state, steps) -> state",
        )
    if node not in graph.leaves:
        raise ValidationError("node", f"{node!r} must be a leaf of the graph (nothing after it)")
    if type(flt).input_arity() != 1:
        raise ValidationError("node", f"{node!r} must take one input (forward(self, x, state))")
    return node


def node_space(
    graph: Any, node: str, space: Mapping[str, Any] | None
) -> tuple[dict[str, SearchSpace], dict[str, Any]]:
    flt = graph.nodes[node]
    entries: dict[str, SearchSpace] = {
        f"{node}.{p}": s for p, s in type(flt).search_space().items()
    }
    fixed: dict[str, Any] = {}
    if space is not None and not isinstance(space, Mapping):
        raise ValidationError("space", f"expected a dict, got {type(space).__name__}")
    decls = type(flt).param_declarations()
    for key, value in (space or {}).items():
        field_name = f"space[{key!r}]"
        owner, _, param = str(key).partition(".")
        if owner != node or not param:
            raise ValidationError(
                field_name,
                f"PBT changes only {node!r}'s hyperparameters between rounds (its state would "
                f"not fit other nodes' changes); expected '{node}.PARAM'",
            )
        if param not in decls:
            raise ValidationError(field_name, f"{type(flt).__name__} has no parameter {param!r}")
        entries.pop(key, None)
        if isinstance(value, SearchSpace):
            entries[key] = value
        elif isinstance(value, list) and value:
            entries[key] = Choice(tuple(value), value[0])
        else:
            fixed[key] = value
    if not entries:
        raise ValidationError(
            "space", f"nothing to explore: {node!r} declares no search() spaces and none given"
        )
    from soma.study._space import _probe

    for key, value in {**entries, **fixed}.items():
        _probe(flt, key.split(".", 1)[1], value, f"space[{key!r}]")
    return entries, fixed
