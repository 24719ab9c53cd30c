"""Runtime tests: reset the call counters of the shared filters around every test."""

from __future__ import annotations

import pytest
from runtime_filters import CALLS


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    yield
    CALLS.clear()
