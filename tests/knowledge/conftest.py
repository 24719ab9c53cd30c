"""Fixtures for the knowledge-base tests.

Every test here runs once per knowledge-base backend (``faiss`` and ``chronos``): an autouse
fixture sets the backend a ``KnowledgeBase(...)`` gets by default. ChronosVector has a wheel
for CPython 3.12 only, so on 3.11 the chronos runs are skipped with that reason; the lean 3.12
environment that ``.ci/kb_py312.sh`` builds runs them against the real library. A test about one
backend's own index says so with ``@pytest.mark.backend("faiss")``.

The real all-MiniLM-L6-v2 embedder is loaded once per test session (``minilm``); tests of
storage, filters and analytics use the model-free :class:`HashingEmbedder` explicitly, which
keeps them fast and is said in each such fixture's name (``kb`` uses hashing, ``semantic_kb``
uses the real model). Where sentence-transformers is not installed (the lean 3.12
environment) the tests that need the model are skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from soma.knowledge import HashingEmbedder, KnowledgeBase, MiniLMEmbedder, _backends

HAS_CHRONOS = importlib.util.find_spec("chronos_vector") is not None
HAS_MINILM = importlib.util.find_spec("sentence_transformers") is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backend(name): the test is about this backend only")


@pytest.fixture(params=_backends.BACKENDS, autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend every KnowledgeBase in this test gets unless it names one."""
    name: str = request.param
    only = request.node.get_closest_marker("backend")
    if only is not None and name not in only.args:
        pytest.skip(f"about the {', '.join(only.args)} backend only")
    if name == "chronos" and not HAS_CHRONOS:
        pytest.skip("chronos-vector has a wheel for CPython 3.12 only (.ci/kb_py312.sh runs these)")
    monkeypatch.setattr(_backends, "DEFAULT_BACKEND", name)
    return name


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    """The real default embedder, warmed up once for the whole session."""
    if not HAS_MINILM:
        pytest.skip("sentence-transformers is not installed (the lean Python 3.12 environment)")
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
