"""Filters shared by the training tests (an importable module: worker processes load them
by reference)."""

from __future__ import annotations

import os

import numpy as np

from soma import Filter
from soma.training import LinearModel


class Boom(LinearModel):
    """Raises on the shard that holds a row with x[0] > ``threshold``."""

    threshold = 1e9

    def gradient(self, x, y, state):
        if np.max(np.asarray(x)[:, 0]) > self.threshold:
            raise ValueError("bad shard")
        return super().gradient(x, y, state)

    def partial_fit(self, x, y, state, steps):
        if np.max(np.asarray(x)[:, 0]) > self.threshold:
            raise ValueError("bad shard")
        return super().partial_fit(x, y, state, steps)


class RowFlags(LinearModel):
    """Fails unless every label equals the row's first feature: catches y not sharded
    with x (a replica that got x rows with another shard's labels)."""

    def gradient(self, x, y, state):
        x = np.asarray(x)
        if not np.array_equal(x[:, 0], np.asarray(y)):
            raise AssertionError("labels do not belong to these rows")
        return super().gradient(x, y, state)

    def partial_fit(self, x, y, state, steps):
        x = np.asarray(x)
        if not np.array_equal(x[:, 0], np.asarray(y)):
            raise AssertionError("labels do not belong to these rows")
        return super().partial_fit(x, y, state, steps)


class Plain(Filter):
    """A learning filter without the distributed protocol."""

    def fit(self, x, y=None):
        return float(np.mean(x))

    def forward(self, x, state):
        return np.asarray(x) - state


class Standardize(Filter):
    def fit(self, x, y=None):
        x = np.asarray(x, dtype=float)
        return {"mean": x.mean(axis=0), "std": x.std(axis=0) + 1e-9, "pid": os.getpid()}

    def forward(self, x, state):
        return (np.asarray(x, dtype=float) - state["mean"]) / state["std"]


class Square(Filter):
    def forward(self, x, state):
        return np.asarray(x) ** 2
