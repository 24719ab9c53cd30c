"""One ``MetricSpec``: a metric's name, which way is better, and how to score a prediction."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soma.vocabulary import DIRECTIONS, Direction

__all__ = ["DIRECTIONS", "MetricFailed", "MetricSpec", "as_objective_value"]


class MetricFailed(Exception):
    """A metric or objective raised or returned something that is not a finite number."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)

    def __reduce__(self) -> tuple[type[MetricFailed], tuple[str, str]]:
        return (type(self), (self.name, str(self)))


def as_objective_value(value: Any, what: str) -> float:
    """``value`` as a finite float; MetricFailed naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise MetricFailed(what, f"{what} returned a bool {value!r}, expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MetricFailed(
            what, f"{what} returned {type(value).__name__} {value!r}, expected a number"
        ) from None
    if not math.isfinite(number):
        raise MetricFailed(what, f"{what} returned {number}, expected a finite number")
    return number


@dataclass(frozen=True)
class MetricSpec:
    """A metric and which way is better. ``fn(y_true, y_pred) -> float``.

    ``fn`` is None for an objective's named value (the objective computes it). ``source``
    says where the function came from (``"sklearn.metrics.accuracy_score"``,
    ``"metrics.py:top2"``).
    """

    name: str
    direction: Direction  # a plain "maximize" / "minimize" is taken too
    fn: Callable[[Any, Any], float] | None
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction.parse(self.direction, "direction"))

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        assert self.fn is not None, f"metric {self.name!r} has no function"
        return self.fn(y_true, y_pred)

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b`` in this metric's direction."""
        return self.direction.better(a, b)

    def score(self, y_true: Any, y_pred: Any) -> float:
        """The metric on one prediction, as a finite float; MetricFailed otherwise."""
        assert self.fn is not None, f"metric {self.name!r} has no function"
        try:
            value = self.fn(y_true, y_pred)
        except Exception as exc:
            raise MetricFailed(
                self.name, f"metric {self.name!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        return as_objective_value(value, f"metric {self.name!r}")
