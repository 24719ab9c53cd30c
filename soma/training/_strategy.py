"""The training-strategy base class and the local strategy (see :mod:`soma.training`)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pydantic

from soma.errors import SomaError, ValidationError
from soma.fingerprint import combine

if TYPE_CHECKING:
    from soma.execute import RunResult
    from soma.graph import Graph

__all__ = [
    "FitCall",
    "Local",
    "NodeStrategy",
    "StrategyModel",
    "TrainingError",
    "TrainingStrategy",
]


class TrainingError(SomaError):
    """A strategy could not train: a replica, client, stage or member failed, a filter
    lacks the distributed-fitting protocol, or the data cannot be sharded as asked."""


@dataclass(frozen=True, slots=True)
class FitCall:
    """One node's fit, ready to run: ``filter.fit(*args[, y])``.

    ``takes_y``: fit accepts the labels; ``y_by_keyword``: pass them as ``y=`` (a fit with
    ``*inputs`` takes its labels by keyword).
    """

    node: str
    filter: Any
    args: tuple[Any, ...]
    y: Any
    takes_y: bool
    y_by_keyword: bool = False

    def run(self) -> Any:
        """Fit here and return the state."""
        if not self.takes_y:
            return self.filter.fit(*self.args)
        if self.y_by_keyword:
            return self.filter.fit(*self.args, y=self.y)
        return self.filter.fit(*self.args, self.y)


class TrainingStrategy(abc.ABC):
    """Carries out a node's fit and returns its fitted state.

    ``runs_graph``: the strategy runs the whole graph itself (ModelParallel places stages
    of the graph on workers) through :meth:`run_graph` instead of fitting node by node.
    """

    runs_graph: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(self, call: FitCall) -> Any:
        """The fitted state for ``call`` (what ``call.run()`` would return)."""

    def cache_token(self) -> str | None:
        """What this strategy adds to a fitted state's cache key (None: nothing, Local).

        A custom strategy is keyed by its class: two strategies never share a fitted state.
        """
        return f"custom:{type(self).__module__}.{type(self).__qualname__}"

    def node_cache_token(self, node: str) -> str | None:
        """The token of ``node``'s fitted-state key: :meth:`cache_token`, unless this
        strategy leaves the node to Local (then Local's key, so the state is shared)."""
        return self.cache_token()

    def describe(self) -> str:
        """One line for plan views and reports."""
        return repr(self)

    def placement(self, nodes: Sequence[str]) -> dict[str, str]:
        """Where each of ``nodes`` is trained (for the plan views); empty: in this process."""
        return {}

    def record(self) -> dict[str, Any]:
        """The strategy as JSON-able data, for experiment records (params)."""
        return {"kind": type(self).__name__}

    def run_graph(
        self, graph: Graph, x: Any, y: Any, *, fitting: bool, want_output: bool
    ) -> RunResult:
        """Run the whole graph (only when ``runs_graph``)."""
        raise NotImplementedError(f"{type(self).__name__} does not run whole graphs")


class StrategyModel(pydantic.BaseModel, TrainingStrategy):
    """A typed, validated, serialisable strategy (pydantic): ``model_dump()`` /
    ``model_dump_json()`` round-trip through :func:`soma.training.parse_strategy`.

    Bad values raise :class:`soma.errors.ValidationError` naming the field, e.g.
    ``DataParallel.num_replicas: expected an int >= 1, got 0``.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise soma_validation_error(type(self).__name__, exc) from None

    def cache_token(self) -> str | None:
        return combine("strategy", self.model_dump_json())

    def __hash__(self) -> int:  # dict fields (ModelParallel.partitions) are unhashable
        return hash((type(self).__name__, self.model_dump_json()))

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def describe(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        fields = [
            f"{name}={getattr(self, name)!r}"
            for name in type(self).model_fields
            if name != "kind" and getattr(self, name) != type(self).model_fields[name].default
        ]
        return f"{type(self).__name__}({', '.join(fields)})"

    __str__ = __repr__


# Discriminator tags pydantic puts into error locations (``client_selection.random``).
_TAGS = frozenset({
    "local", "data_parallel", "model_parallel", "federated", "population_based", "fedavg",
    "fedprox", "all", "random", "by_tags", "pipeline", "truncation", "binary_tournament",
    "perturb", "resample",
})  # fmt: skip


class NodeStrategy(StrategyModel):
    """A strategy that trains some nodes: ``nodes`` names them (None: every node that
    learns). The other nodes are fitted here by Local, as the plan views show."""

    nodes: tuple[str, ...] | None = None

    def trains(self, node: str) -> bool:
        return self.nodes is None or node in self.nodes

    def node_cache_token(self, node: str) -> str | None:
        # A node this strategy does not train is fitted by Local: the same state, Local's key.
        return self.cache_token() if self.trains(node) else None

    def placement(self, nodes: Sequence[str]) -> dict[str, str]:
        where = self.where()
        return {node: where for node in nodes if self.trains(node)}

    def where(self) -> str:
        """How a trained node is spread, for the plan views."""
        return repr(self)


def soma_validation_error(owner: str, exc: pydantic.ValidationError) -> ValidationError:
    """Pydantic's first error as a Soma ValidationError naming ``Owner.field``."""
    first = exc.errors()[0]
    parts = [str(p) for p in first.get("loc", ()) if not (isinstance(p, str) and p in _TAGS)]
    inner = (first.get("ctx") or {}).get("error")
    if isinstance(inner, ValidationError):  # a nested option's own error: keep its field
        parts = [*parts[:1], *inner.field.split(".")[1:]] if parts else inner.field.split(".")
        message = inner.message
    else:
        message = first.get("msg", str(exc))
        if "input" in first and first.get("type") != "missing":
            message = f"{message}, got {first['input']!r}"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return ValidationError(".".join([owner, *parts]), message)


class Local(StrategyModel):
    """Fit in this process, in the calling thread: ``call.run()`` (the default)."""

    kind: Literal["local"] = "local"

    def fit(self, call: FitCall) -> Any:
        return call.run()

    def cache_token(self) -> str | None:
        return None  # the default: keys stay what they were before strategies existed
