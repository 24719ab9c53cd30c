"""Filters shared by the runtime tests. Calls are counted in CALLS so tests can tell
computed nodes from cached ones."""

from __future__ import annotations

import threading
from collections import Counter

from soma import Filter, search

CALLS: Counter[str] = Counter()
_lock = threading.Lock()


def count(name: str) -> None:
    with _lock:
        CALLS[name] += 1


class Add(Filter):
    amount = search(-100.0, 100.0, default=1.0)

    def forward(self, x, state):
        count(f"Add.forward:{self.amount}")
        return x + self.amount


class Mul(Filter):
    factor = search(-100.0, 100.0, default=2.0)

    def forward(self, x, state):
        count(f"Mul.forward:{self.factor}")
        return x * self.factor


class Center(Filter):
    """Learns the mean of its training input."""

    def fit(self, x, y=None):
        count("Center.fit")
        return sum(x) / len(x)

    def forward(self, x, state):
        count("Center.forward")
        return [v - state for v in x]


class Pair(Filter):
    def forward(self, left, right, state):
        return (left, right)


class Keyed(Filter):
    def forward(self, x, state):
        return x


class Gather(Filter):
    def forward(self, *inputs, state):
        return list(inputs)
