"""Lazy pipeline expressions built with ``>>`` (chain) and ``|`` (fork).

``a >> b`` is a Chain; ``a | b`` is a Fork whose branches all receive the same input;
a Fork followed by ``>>`` fans in: the next step receives every branch's output, in the
fork's order. ``Graph.somatize(expr)`` turns an expression into a graph.

Python binds ``>>`` tighter than ``|``: ``A | B >> C`` means ``A | (B >> C)``. The graph
compiler warns when that leaves a branch dangling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from soma.errors import GraphError
from soma.filter import Filter

__all__ = ["Chain", "Expr", "Fork", "chain", "fork"]

Step = Union[Filter, "Chain", "Fork"]
Expr = Step


def _as_step(obj: Any, where: str) -> Step:
    if isinstance(obj, Filter | Chain | Fork):
        return obj
    if isinstance(obj, list | tuple):
        return Fork(tuple(_as_step(o, where) for o in obj))
    raise GraphError(
        f"{where}: expected a Filter instance, a chain or a fork, got {type(obj).__name__} "
        f"{obj!r} (did you pass a class instead of an instance?)"
    )


@dataclass(frozen=True, eq=False)
class Chain:
    """Steps run one after another; each receives the previous step's output."""

    steps: tuple[Step, ...]

    def __rshift__(self, other: Any) -> Chain:
        return chain(self, other)

    def __rrshift__(self, other: Any) -> Chain:
        return chain(other, self)

    def __or__(self, other: Any) -> Fork:
        return fork(self, other)

    def __ror__(self, other: Any) -> Fork:
        return fork(other, self)

    def __repr__(self) -> str:
        return " >> ".join(_repr_step(s, in_chain=True) for s in self.steps)


@dataclass(frozen=True, eq=False)
class Fork:
    """Branches that each receive the same input; ``>>`` after a fork fans their outputs in."""

    branches: tuple[Step, ...]

    def __rshift__(self, other: Any) -> Chain:
        return chain(self, other)

    def __rrshift__(self, other: Any) -> Chain:
        return chain(other, self)

    def __or__(self, other: Any) -> Fork:
        return fork(self, other)

    def __ror__(self, other: Any) -> Fork:
        return fork(other, self)

    def __repr__(self) -> str:
        return "(" + " | ".join(_repr_step(b, in_chain=False) for b in self.branches) + ")"


def _repr_step(step: Step, in_chain: bool) -> str:
    if isinstance(step, Chain) and not in_chain:
        return f"({step!r})"
    return repr(step)


def chain(left: Any, right: Any) -> Chain:
    """``left >> right``, flattening nested chains."""
    steps: list[Step] = []
    for part in (_as_step(left, "left of >>"), _as_step(right, "right of >>")):
        steps.extend(part.steps if isinstance(part, Chain) else (part,))
    return Chain(tuple(steps))


def fork(left: Any, right: Any) -> Fork:
    """``left | right``, flattening nested forks (``a | b | c`` has three branches)."""
    branches: list[Step] = []
    for part in (_as_step(left, "left of |"), _as_step(right, "right of |")):
        branches.extend(part.branches if isinstance(part, Fork) else (part,))
    return Fork(tuple(branches))
