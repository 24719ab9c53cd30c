"""Control flow inside a graph: ``Branch`` (run one of two arms) and ``Loop`` (repeat a body).

Both are steps like filters, so they compose with ``>>`` and ``|``:

>>> import soma
>>> class Double(soma.Filter):
...     def forward(self, x, state):
...         return x * 2
>>> class Negate(soma.Filter):
...     def forward(self, x, state):
...         return -x
>>> g = soma.Graph.somatize(soma.Branch(lambda x: x > 0, then=Double(), otherwise=Negate()))
>>> g.forward(3), g.forward(-3)
(6, 3)
>>> g = soma.Graph.somatize(soma.Loop(Double(), until=lambda x: x > 100, max_iterations=10))
>>> g.forward(3)
192

Only the taken arm runs (in fit and in forward); a Loop runs its body at most
``max_iterations`` times and stops after the first iteration whose output makes ``until``
true. Each loop iteration fits its own states (the body is unrolled), so a forward that
needs more iterations than fit ran raises an error naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soma._expr import Chain, Fork
from soma.errors import GraphError, ValidationError
from soma.filter import Filter
from soma.fingerprint import callable_fingerprint

__all__ = ["Branch", "ControlStep", "Loop"]

_Arm = Filter | Chain | Fork | None


def _check_arm(field: str, arm: Any, allow_none: bool) -> _Arm:
    if arm is None and allow_none:
        return None
    if isinstance(arm, Filter | Chain | Fork):
        return arm
    if isinstance(arm, list | tuple):
        from soma._expr import _as_step

        return _as_step(arm, field)
    expected = "a Filter, a chain or a fork" + (" (or None)" if allow_none else "")
    raise ValidationError(field, f"expected {expected}, got {type(arm).__name__} {arm!r}")


def _describe(fn: Any) -> str:
    name = getattr(fn, "__name__", type(fn).__name__)
    return "<lambda>" if name == "<lambda>" else name


class ControlStep(Filter):
    """Base of Branch and Loop: a graph node that owns sub-graphs (its arms or body).

    It is never called like a filter; the graph expands its arms into nodes of its own
    and the executor runs them.
    """

    def __init__(self) -> None:  # no hyperparameters of its own
        object.__setattr__(self, "_params", {})

    def arms(self) -> dict[str, _Arm]:
        raise NotImplementedError

    def with_params(self, **changes: Any) -> Filter:
        if changes:
            raise GraphError(
                f"{type(self).__name__} has no parameters of its own; set the parameters "
                "of the filters inside it by their node names"
            )
        return self

    def fit(self, x: Any, y: Any = None) -> Any:  # pragma: no cover - the executor runs arms
        raise GraphError(f"{type(self).__name__} runs inside a Graph; use Graph.somatize(...)")

    def forward(self, x: Any, state: Any) -> Any:  # pragma: no cover - see fit
        raise GraphError(f"{type(self).__name__} runs inside a Graph; use Graph.somatize(...)")

    @classmethod
    def is_stateless(cls) -> bool:
        return True


class Branch(ControlStep):
    """Run ``then`` when ``predicate(x)`` is true, else ``otherwise`` (None: pass x through)."""

    def __init__(
        self,
        predicate: Callable[[Any], Any],
        *,
        then: Filter | Chain | Fork,
        otherwise: Filter | Chain | Fork | None = None,
    ) -> None:
        super().__init__()
        if not callable(predicate) or isinstance(predicate, Filter):
            raise ValidationError(
                "predicate", f"expected a callable x -> bool, got {type(predicate).__name__}"
            )
        object.__setattr__(self, "predicate", predicate)
        object.__setattr__(self, "then", _check_arm("then", then, allow_none=False))
        object.__setattr__(self, "otherwise", _check_arm("otherwise", otherwise, allow_none=True))

    def arms(self) -> dict[str, _Arm]:
        return {"then": self.then, "otherwise": self.otherwise}

    def _soma_fingerprint_parts(self) -> tuple[str, ...]:
        return ("branch", callable_fingerprint(self.predicate))

    def __repr__(self) -> str:
        return (
            f"Branch({_describe(self.predicate)}, then={self.then!r}, otherwise={self.otherwise!r})"
        )


class Loop(ControlStep):
    """Repeat ``body`` (its output feeds the next pass) until ``until(output)`` is true.

    ``max_iterations`` (>= 1) bounds it; without ``until`` the body runs exactly
    ``max_iterations`` times.
    """

    def __init__(
        self,
        body: Filter | Chain | Fork,
        *,
        until: Callable[[Any], Any] | None = None,
        max_iterations: int,
    ) -> None:
        super().__init__()
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
            raise ValidationError(
                "max_iterations", f"expected an int >= 1, got {type(max_iterations).__name__}"
            )
        if max_iterations < 1:
            raise ValidationError("max_iterations", f"expected an int >= 1, got {max_iterations}")
        if until is not None and (not callable(until) or isinstance(until, Filter)):
            raise ValidationError(
                "until", f"expected a callable output -> bool or None, got {type(until).__name__}"
            )
        object.__setattr__(self, "body", _check_arm("body", body, allow_none=False))
        object.__setattr__(self, "until", until)
        object.__setattr__(self, "max_iterations", max_iterations)

    def arms(self) -> dict[str, _Arm]:
        return {"body": self.body}

    def _soma_fingerprint_parts(self) -> tuple[str, ...]:
        until = callable_fingerprint(self.until) if self.until is not None else "-"
        return ("loop", until, str(self.max_iterations))

    def __repr__(self) -> str:
        until = f", until={_describe(self.until)}" if self.until is not None else ""
        return f"Loop({self.body!r}{until}, max_iterations={self.max_iterations})"
