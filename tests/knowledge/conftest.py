"""Fixtures for the knowledge-base tests.

The real all-MiniLM-L6-v2 embedder is loaded once per test session (``minilm``); tests of
storage, filters and analytics use the model-free :class:`HashingEmbedder` explicitly, which
keeps them fast and is said in each such fixture's name (``kb`` uses hashing, ``semantic_kb``
uses the real model).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soma.knowledge import HashingEmbedder, KnowledgeBase, MiniLMEmbedder


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    """The real default embedder, warmed up once for the whole session."""
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    return embedder


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    """A file-backed KB with the cheap deterministic hashing embedder."""
    base = KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder())
    yield base
    base.close()


@pytest.fixture
def semantic_kb(tmp_path: Path, minilm: MiniLMEmbedder) -> Iterator[KnowledgeBase]:
    """A file-backed KB with the real all-MiniLM-L6-v2 embedder."""
    base = KnowledgeBase(tmp_path / "kb.sqlite", embedder=minilm)
    yield base
    base.close()
