"""Fixtures for the headless TUI tests (helpers live in ``tui_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import seed

from soma.knowledge import HashingEmbedder, KnowledgeBase


@pytest.fixture
def embedder() -> HashingEmbedder:
    """A cheap deterministic embedder for tests that do not test meaning."""
    return HashingEmbedder()


@pytest.fixture
def seeded_kb(tmp_path: Path, embedder: HashingEmbedder) -> tuple[Path, dict[str, list[str]]]:
    path = tmp_path / "kb.sqlite"
    with KnowledgeBase(path, embedder=embedder) as kb:
        ids = seed(kb)
    return path, ids
