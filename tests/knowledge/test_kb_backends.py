"""Choosing the knowledge base's vector index: names, errors, and what each backend files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import HAS_CHRONOS

from soma.errors import KnowledgeBaseError, ValidationError
from soma.knowledge import HashingEmbedder, KnowledgeBase


@pytest.mark.backend("faiss")  # about choosing, not about one index
def test_unknown_backend_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder(), backend="annoy")
    assert info.value.field == "backend"
    assert "faiss, chronos" in str(info.value)


@pytest.mark.backend("faiss")
@pytest.mark.skipif(HAS_CHRONOS, reason="chronos-vector is installed here")
def test_chronos_without_the_wheel_says_so_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError) as info:
        KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder(), backend="chronos")
    message = str(info.value)
    assert "\n" not in message
    assert "Python 3.12" in message and "soma-research[chronos]" in message
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in message
    assert not (tmp_path / "kb.sqlite").exists()  # refused before anything was created


def test_the_backend_is_reported(tmp_path: Path, backend: str) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        assert kb.backend == backend
        assert f"backend={backend!r}" in repr(kb)
