"""Fixtures for the research-project tests: small project folders written on the fly."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from soma.project import init_project

MINIMAL_DATA = """
def load():
    x = [[float(i), float(i % 3)] for i in range(12)]
    y = [i % 2 for i in range(12)]
    return {"train": (x[:8], y[:8]), "valid": (x[8:], y[8:])}
"""


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write a project: ``make_project(toml=..., files={"filters/a.py": "..."})``."""

    def make(
        toml: str = '[metric]\nname = "accuracy"\n',
        files: dict[str, str] | None = None,
        name: str = "proj",
    ) -> Path:
        root = tmp_path / name
        (root / "filters").mkdir(parents=True, exist_ok=True)
        (root / "soma.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
        all_files = {"data.py": MINIMAL_DATA, **(files or {})}
        for rel, text in all_files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return make


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project scaffolded by ``init_project`` (shared: tests must not modify it)."""
    return init_project(tmp_path_factory.mktemp("digits"), example="digits")
