"""Search-space declarations for filter hyperparameters.

A filter declares a tunable hyperparameter by assigning ``search(...)`` to a class
attribute. The declaration carries its default, so an untuned filter still runs:

>>> from soma import Filter, search
>>> class Ridge(Filter):
...     alpha = search(1e-3, 1e3, log=True, default=1.0)
...     solver = search(choices=["auto", "svd"], default="auto")
>>> Ridge().alpha
1.0
>>> Ridge.search_space()["alpha"]
FloatRange(low=0.001, high=1000.0, log=True, step=None, default=1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Choice", "FloatRange", "IntRange", "SearchSpace", "search"]


class SearchSpace:
    """Base of the three declaration kinds; ``default`` is what an untuned filter uses."""

    default: Any

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class FloatRange(SearchSpace):
    low: float
    high: float
    log: bool = False
    step: float | None = None
    default: float | None = None

    def contains(self, value: Any) -> bool:
        return _is_number(value) and math.isfinite(value) and self.low <= value <= self.high

    def describe(self) -> str:
        scale = ", log" if self.log else ""
        return f"float in [{self.low}, {self.high}]{scale}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "float",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
            "default": self.default,
        }


@dataclass(frozen=True)
class IntRange(SearchSpace):
    low: int
    high: int
    log: bool = False
    step: int = 1
    default: int | None = None

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (self.low <= value <= self.high)
        )

    def describe(self) -> str:
        scale = ", log" if self.log else ""
        return f"int in [{self.low}, {self.high}]{scale}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "int",
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
            "default": self.default,
        }


@dataclass(frozen=True)
class Choice(SearchSpace):
    choices: tuple[Any, ...]
    default: Any = None

    def contains(self, value: Any) -> bool:
        # bool is an int in Python: True must not match a choice of 1.
        return any(type(value) is type(c) and value == c for c in self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "choices": list(self.choices), "default": self.default}


_NO_DEFAULT: Any = object()


def search(
    low: float | None = None,
    high: float | None = None,
    *,
    log: bool = False,
    step: float | None = None,
    choices: list[Any] | tuple[Any, ...] | None = None,
    default: Any = _NO_DEFAULT,
) -> SearchSpace:
    """Declare a hyperparameter's search space and default.

    ``search(low, high)`` is an int range when both bounds are ints, else a float range;
    ``log=True`` samples on a log scale (bounds must be > 0); ``choices=[...]`` is a
    categorical. Without ``default`` the default is the low bound (ranges) or the first
    choice, and a given default must lie inside the space.
    """
    if choices is not None:
        if low is not None or high is not None or log or step is not None:
            raise ValueError("search(choices=...) takes no low, high, log or step")
        options = tuple(choices)
        if not options:
            raise ValueError("search(choices=...) needs at least one choice")
        space: SearchSpace = Choice(options, options[0] if default is _NO_DEFAULT else default)
    else:
        if low is None or high is None:
            raise ValueError("search() needs low and high, or choices=[...]")
        if not (_is_number(low) and _is_number(high)):
            raise ValueError(f"search() bounds must be numbers, got {low!r} and {high!r}")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"search() bounds must be finite, got {low!r} and {high!r}")
        if not low < high:
            raise ValueError(f"search() needs low < high, got low={low!r}, high={high!r}")
        if log and low <= 0:
            raise ValueError(f"search(log=True) needs low > 0, got low={low!r}")
        if step is not None:
            # `step or 1` used to turn step=0 into 1 and a negative step passed through to
            # the samplers; a step is a count of units, so it must be positive.
            if not _is_number(step) or not math.isfinite(step) or step <= 0:
                raise ValueError(f"search(step=...) must be a number > 0, got {step!r}")
            int_range = isinstance(low, int) and isinstance(high, int) and isinstance(step, int)
            if log and not (int_range and step == 1):
                raise ValueError(f"search(log=True) cannot take a step, got step={step!r}")
        if (
            isinstance(low, int)
            and isinstance(high, int)
            and (step is None or isinstance(step, int))
        ):
            int_default = low if default is _NO_DEFAULT else default
            space = IntRange(low, high, log, 1 if step is None else step, int_default)
        else:
            float_default = float(low) if default is _NO_DEFAULT else default
            if isinstance(float_default, int) and not isinstance(float_default, bool):
                float_default = float(float_default)
            space = FloatRange(float(low), float(high), log, step, float_default)
    if not space.contains(space.default):
        raise ValueError(f"search() default {space.default!r} is not {space.describe()}")
    return space
