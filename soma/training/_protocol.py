"""The distributed-fitting protocol: what a filter implements so a strategy can train it
on shards, clients or population members.

=================================================  =========================================
method                                             used by
=================================================  =========================================
``init_state(x, y) -> state``                      every strategy (the untrained state)
``partial_fit(x, y, state, steps) -> state``       DataParallel(parameter_server), Federated,
                                                   PopulationBased (``steps`` more steps)
``merge(states, weights) -> state``                DataParallel(parameter_server), Federated
                                                   (weights sum to 1, by sample count)
``gradient(x, y, state) -> grad``                  DataParallel(allreduce): the gradient of
                                                   the *mean* loss over ``x, y``
``apply_gradient(state, grad) -> state``           DataParallel(allreduce): one step
``partial_fit_prox(x, y, state, steps, anchor,     Federated(fedprox): partial_fit on
mu) -> state``                                     loss + mu/2 * ||state - anchor||^2
=================================================  =========================================

``epochs`` (an int attribute, default 1) is how many synchronous rounds DataParallel runs;
``fit(x, y)`` of a protocol filter must equal ``init_state`` then ``epochs`` times
``partial_fit(.., steps=1)`` on all the data (what :class:`DistributedFilter` does), so a
strategy reproduces Local.

:class:`DistributedFilter` gives ``fit`` and a ``merge`` that averages states made of
numbers, numpy arrays and torch tensors (in dicts, lists and tuples). A strategy that
needs a method the filter lacks raises :class:`~soma.training.TrainingError` naming the
strategy, the node, the filter and each missing method; it never falls back to Local.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from soma.filter import Filter
from soma.training._strategy import TrainingError

__all__ = ["PROTOCOL", "DistributedFilter", "require", "weighted_average"]

PROTOCOL: dict[str, str] = {
    "init_state": "init_state(x, y) -> state",
    "partial_fit": "partial_fit(x, y, state, steps) -> state",
    "merge": "merge(states, weights) -> state",
    "gradient": "gradient(x, y, state) -> gradient of the mean loss",
    "apply_gradient": "apply_gradient(state, gradient) -> state",
    "partial_fit_prox": "partial_fit_prox(x, y, state, steps, anchor, mu) -> state",
}


def _stub(method: Any) -> Any:
    method.__soma_stub__ = True
    return method


class DistributedFilter(Filter):
    """Base class of filters that strategies can train in pieces (see the module doc)."""

    epochs = 1

    @_stub
    def init_state(self, x: Any, y: Any = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement init_state(x, y)")

    @_stub
    def partial_fit(self, x: Any, y: Any, state: Any, steps: int) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement partial_fit(x, y, state, steps) -> state"
        )

    def merge(self, states: Sequence[Any], weights: Sequence[float]) -> Any:
        """The weighted average of ``states`` (leaf by leaf)."""
        return weighted_average(states, weights)

    @_stub
    def gradient(self, x: Any, y: Any, state: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement gradient(x, y, state)")

    @_stub
    def apply_gradient(self, state: Any, gradient: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement apply_gradient")

    @_stub
    def partial_fit_prox(
        self, x: Any, y: Any, state: Any, steps: int, anchor: Any, mu: float
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement partial_fit_prox")

    def fit(self, x: Any, y: Any = None) -> Any:
        state = self.init_state(x, y)
        for _ in range(int(self.epochs)):
            state = self.partial_fit(x, y, state, 1)
        return state


def _implements(flt: Any, name: str) -> bool:
    method = getattr(flt, name, None)
    if not callable(method) or getattr(method, "__soma_stub__", False):
        return False
    iterative = sys.modules.get("soma.pbt._iterative")  # loaded if flt can be one
    base = getattr(iterative, "IterativeFilter", None)
    if base is not None and name in ("init_state", "partial_fit") and isinstance(flt, base):
        # IterativeFilter's own partial_fit raises and its init_state returns None.
        return getattr(type(flt), name) is not getattr(base, name)
    return True


def require(flt: Any, node: str, strategy: str, names: Sequence[str]) -> None:
    """TrainingError naming every method of ``names`` that ``flt`` does not implement."""
    missing = [name for name in names if not _implements(flt, name)]
    if missing:
        wanted = "; ".join(PROTOCOL[name] for name in missing)
        raise TrainingError(
            f"{strategy} cannot train node {node!r}: filter {type(flt).__name__} does not "
            f"implement {', '.join(missing)} ({wanted}); see soma.training.DistributedFilter, "
            "or fit this graph with Local"
        )


def weighted_average(states: Sequence[Any], weights: Sequence[float]) -> Any:
    """``sum(w * s)`` leaf by leaf over dicts, lists, tuples, numbers, arrays and tensors."""
    if not states:
        raise TrainingError("merge: no states to average (every shard was empty?)")
    if len(states) != len(weights):
        raise TrainingError(f"merge: {len(states)} states but {len(weights)} weights")
    first = states[0]
    if isinstance(first, Mapping):
        merged = {key: weighted_average([s[key] for s in states], weights) for key in first}
        return merged if type(first) is dict else type(first)(merged)
    if isinstance(first, list | tuple):
        items = [weighted_average([s[i] for s in states], weights) for i in range(len(first))]
        return type(first)(items) if isinstance(first, list) else tuple(items)
    if isinstance(first, bool) or first is None or isinstance(first, str):
        # Metadata (shapes, flags): every state must agree, there is nothing to average.
        if any(s != first for s in states[1:]):
            raise TrainingError(f"merge: states disagree on a non-numeric field ({first!r})")
        return first
    if isinstance(first, int | float | np.ndarray | np.generic):
        if isinstance(first, int) and all(s == first for s in states[1:]):
            return first  # counts and sizes: metadata
        total = sum(
            float(w) * np.asarray(s, dtype=np.float64) for s, w in zip(states, weights, strict=True)
        )
        if isinstance(first, np.ndarray):
            return np.asarray(total, dtype=first.dtype if first.dtype.kind == "f" else np.float64)
        return float(total)
    module = type(first).__module__
    if module.startswith("torch"):
        total = first * float(weights[0])
        for state, weight in zip(states[1:], weights[1:], strict=True):
            total = total + state * float(weight)
        return total
    raise TrainingError(
        f"merge: cannot average a {type(first).__name__}; implement merge(states, weights)"
    )
