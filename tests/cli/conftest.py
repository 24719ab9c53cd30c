"""Fixtures for the command-line tests (helpers live in ``cli_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from soma.project import init_project


@pytest.fixture
def digits_project(tmp_path: Path) -> Path:
    return Path(init_project(tmp_path / "digits", example="digits"))
