"""``IterativeFilter``: a filter that learns in steps, so PBT can train it a few steps at a
time and change its hyperparameters between rounds.

>>> import numpy as np
>>> from soma import search
>>> class MeanTracker(IterativeFilter):
...     lr = search(0.01, 1.0, log=True, default=0.5)
...     epochs = 3
...     def init_state(self, x, y=None):
...         return 0.0
...     def partial_fit(self, x, y, state, steps):
...         for _ in range(steps):
...             state += self.lr * (float(np.mean(y)) - state)
...         return state
...     def forward(self, x, state):
...         return np.full(len(x), state)
>>> MeanTracker().fit(np.zeros(2), np.array([4.0, 4.0]))
3.5
"""

from __future__ import annotations

from typing import Any

from soma.filter import Filter
from soma.study._intermediate import report

__all__ = ["IterativeFilter", "is_iterative"]


class IterativeFilter(Filter):
    """Base class of filters trained step by step.

    Implement ``init_state(x, y)`` (a fresh, untrained state), ``partial_fit(x, y, state,
    steps) -> state`` (train ``steps`` more steps from ``state``; return the new state) and
    ``forward(x, state)``. ``fit`` trains ``epochs`` steps from a fresh state; when
    ``monitor(x, y, state)`` returns a number, it is reported after every step (a study's
    pruner can then stop the trial early).
    """

    epochs = 10  # the steps ``fit`` trains (PBT uses its own rounds x steps instead)

    def init_state(self, x: Any, y: Any = None) -> Any:
        """The state before any training step."""
        return None

    def partial_fit(self, x: Any, y: Any, state: Any, steps: int) -> Any:
        """Train ``steps`` more steps starting from ``state``; return the new state."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement partial_fit(x, y, state, steps) -> state"
        )

    def monitor(self, x: Any, y: Any, state: Any) -> float | None:
        """An intermediate value to report after each ``fit`` step (None: report nothing)."""
        return None

    def fit(self, x: Any, y: Any = None) -> Any:
        state = self.init_state(x, y)
        for step in range(int(self.epochs)):
            state = self.partial_fit(x, y, state, 1)
            value = self.monitor(x, y, state)
            if value is not None:
                report(value, step)
        return state


def is_iterative(flt: Filter) -> bool:
    """True when ``flt`` follows the step protocol (an IterativeFilter, or any filter with
    its own ``init_state`` and ``partial_fit``)."""
    if isinstance(flt, IterativeFilter):
        return type(flt).partial_fit is not IterativeFilter.partial_fit
    return callable(getattr(flt, "partial_fit", None)) and callable(
        getattr(flt, "init_state", None)
    )
