"""The training-strategy base class and the local strategy (see :mod:`soma.training`)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

__all__ = ["FitCall", "Local", "TrainingStrategy"]


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
    """Carries out a node's fit and returns its fitted state."""

    @abc.abstractmethod
    def fit(self, call: FitCall) -> Any:
        """The fitted state for ``call`` (what ``call.run()`` would return)."""


class Local(TrainingStrategy):
    """Fit in this process, in the calling thread: ``call.run()``."""

    def fit(self, call: FitCall) -> Any:
        return call.run()

    def __repr__(self) -> str:
        return "Local()"
