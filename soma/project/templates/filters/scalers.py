"""Feature scalers: learn per-column statistics on the training data, apply them anywhere."""

from __future__ import annotations

import numpy as np

from soma import Filter


def _safe(scale: np.ndarray) -> np.ndarray:
    # Constant columns (blank pixels) would divide by zero; leave them unscaled.
    return np.where(scale > 0, scale, 1.0)


class StandardScale(Filter):
    """Centre each feature on its training mean and divide by its standard deviation."""

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        return x.mean(axis=0), _safe(x.std(axis=0))

    def forward(self, x, state):
        mean, scale = state
        return (np.asarray(x, dtype=np.float64) - mean) / scale


class MinMaxScale(Filter):
    """Map each feature's training range onto [0, 1]."""

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        low = x.min(axis=0)
        return low, _safe(x.max(axis=0) - low)

    def forward(self, x, state):
        low, span = state
        return (np.asarray(x, dtype=np.float64) - low) / span


class RobustScale(Filter):
    """Centre on the median and divide by the interquartile range (robust to outliers)."""

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        q25, median, q75 = np.percentile(x, [25, 50, 75], axis=0)
        return median, _safe(q75 - q25)

    def forward(self, x, state):
        median, spread = state
        return (np.asarray(x, dtype=np.float64) - median) / spread
