"""``build_graph``: a project's pipeline spec (plus parameter overrides and a seed) -> Graph.

Every face that turns a spec into a graph calls this, so they accept and refuse the same
specs with the same messages. Bad input is a ValidationError whose ``field`` is ``spec``,
``params``, ``seed`` or ``strategy``. :func:`experiment_params` is what an experiment
records as its params: the graph's parameters and, unless it trains locally, its strategy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from soma.errors import GraphError, ParamError, ProjectError, ValidationError

if TYPE_CHECKING:
    from soma.cache import CacheStore
    from soma.graph import Graph

__all__ = ["SEED_PARAMS", "SpecParser", "build_graph", "experiment_params", "jsonable_value"]

#: Filter parameters a run's seed is written into when the spec does not set them.
SEED_PARAMS = ("seed", "random_state")


class SpecParser(Protocol):
    """What turns a spec into an expression: a ``soma.project.Project``."""

    def parse_spec(self, spec: Any) -> Any: ...


def build_graph(
    spec: str | Mapping[str, Any] | list[Any],
    *,
    project: SpecParser,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    cache: CacheStore | None = None,
    strategy: Any = None,
) -> Graph:
    """Parse ``spec`` with the project's filters; apply ``params`` (``{"node.param": v}``);
    write ``seed`` into every ``seed`` / ``random_state`` parameter ``params`` leaves unset;
    fit it with ``strategy`` (a ``soma.training`` strategy, its data or JSON, or a kind
    name such as ``"data_parallel"``; None: Local)."""
    from soma.graph import Graph

    try:
        expr = project.parse_spec(spec)
    except (ProjectError, ParamError, GraphError) as exc:
        raise ValidationError("spec", str(exc)) from None
    try:
        graph = Graph.somatize(expr, cache=cache)
    except (GraphError, ParamError) as exc:
        raise ValidationError("spec", str(exc)) from None
    params = dict(params or {})
    if params:
        try:
            graph = graph.with_params(params)
        except (ParamError, GraphError) as exc:
            # with_params' message already lists the node's (or every) parameter name.
            raise ValidationError("params", str(exc)) from None
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValidationError("seed", f"expected an int, got {seed!r}")
        overrides = {
            f"{node}.{name}": seed
            for node, flt in graph.nodes.items()
            for name in SEED_PARAMS
            if name in flt.params and f"{node}.{name}" not in params
        }
        if overrides:
            try:
                graph = graph.with_params(overrides)
            except (ParamError, GraphError) as exc:
                raise ValidationError("seed", str(exc)) from None
    if strategy is not None:
        graph = _with_strategy(graph, strategy)
    return graph


def _with_strategy(graph: Graph, strategy: Any) -> Graph:
    try:
        graph = graph.with_strategy(strategy)
    except ValidationError as exc:
        # 'DataParallel.num_replicas' -> 'strategy.num_replicas': the caller's field name.
        inner = exc.field.split(".", 1)[1] if "." in exc.field else ""
        field = exc.field if exc.field.startswith("strategy") else f"strategy.{inner}".rstrip(".")
        raise ValidationError(field, exc.message) from None
    unknown = [n for n in getattr(graph.strategy, "nodes", None) or () if n not in graph.nodes]
    if unknown:
        raise ValidationError(
            "strategy.nodes",
            f"no node named {', '.join(map(repr, unknown))} (nodes: {', '.join(graph.nodes)})",
        )
    return graph


def experiment_params(graph: Graph) -> dict[str, Any]:
    """The params an experiment records: the graph's ``{"node.param": value}`` as JSON
    values, plus ``strategy.kind`` and ``strategy.<field>`` entries (flattened like the
    node params, so where-clauses can read them) when the graph is not fitted locally."""
    out = {key: jsonable_value(value) for key, value in graph.params.items()}
    record = graph.strategy.record()
    if record.get("kind") not in ("local", "Local"):
        out.update(_flatten("strategy", record))
    return out


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}", item))
        return out
    return {prefix: jsonable_value(value)}


def jsonable_value(value: Any) -> Any:
    """``value`` as JSON types for a record: numpy scalars as their Python value, tuples as
    lists, anything else as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable_value(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # a numpy scalar: its Python value
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable_value(item())
    return repr(value)
