"""Fixtures for the agent tests: scaffolded projects, a fast KB embedder, a scripted LLM server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import SLOW_MODEL, ScriptedServer

from soma.project import init_project


@pytest.fixture
def digits_project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "digits", example="digits")


@pytest.fixture
def tools(digits_project: Path) -> Iterator[Any]:
    from soma_tools import ToolContext

    ctx = ToolContext(digits_project, embedder="hashing")
    yield ctx
    ctx.close()


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    """The wine example with one slow model (about 1.2 s a fit) and no other model."""
    root = init_project(tmp_path / "slow", example="wine")
    (root / "filters" / "models.py").unlink()
    (root / "filters" / "reducers.py").unlink()
    (root / "filters" / "slow.py").write_text(SLOW_MODEL, encoding="utf-8")
    return root


@pytest.fixture
def llm_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()
