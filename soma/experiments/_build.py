"""``build_graph``: a project's pipeline spec (plus parameter overrides and a seed) -> Graph.

Every face that turns a spec into a graph calls this, so they accept and refuse the same
specs with the same messages. Bad input is a ValidationError whose ``field`` is ``spec``,
``params`` or ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from soma.errors import GraphError, ParamError, ProjectError, ValidationError

if TYPE_CHECKING:
    from soma.cache import CacheStore
    from soma.graph import Graph

__all__ = ["SEED_PARAMS", "SpecParser", "build_graph"]

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
) -> Graph:
    """Parse ``spec`` with the project's filters; apply ``params`` (``{"node.param": v}``);
    write ``seed`` into every ``seed`` / ``random_state`` parameter ``params`` leaves unset."""
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
    return graph
