"""Fixtures for the study and PBT tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)) * np.array([1.0, 10.0, 0.1, 3.0]) + 5.0
    w = np.array([1.0, -0.2, 4.0, 0.5])
    y = x @ w + rng.normal(scale=0.5, size=120)
    return x[:80], y[:80], x[80:], y[80:]


@pytest.fixture
def unit_data():
    x = np.zeros((3, 1))
    return x, np.zeros(3)
