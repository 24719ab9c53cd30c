"""Choosing the knowledge base's vector index: names, errors, and what each backend files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from soma.errors import KnowledgeBaseError, ValidationError
from soma.knowledge import HashingEmbedder, KnowledgeBase

HAS_CHRONOS = importlib.util.find_spec("chronos_vector") is not None


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


@pytest.mark.backend("faiss")
def test_soma_toml_names_the_backend(tmp_path: Path) -> None:
    from soma.errors import ProjectError
    from soma.project import project_paths

    (tmp_path / "data.py").write_text("def load():\n    return {}\n", encoding="utf-8")
    (tmp_path / "filters").mkdir()
    toml = tmp_path / "soma.toml"
    toml.write_text('[metric]\nname = "accuracy"\n', encoding="utf-8")
    assert project_paths(tmp_path).kb_backend == "faiss"
    toml.write_text('[metric]\nname = "accuracy"\n[kb]\nbackend = "chronos"\n', encoding="utf-8")
    assert project_paths(tmp_path).kb_backend == "chronos"
    toml.write_text('[metric]\nname = "accuracy"\n[kb]\nbackend = "annoy"\n', encoding="utf-8")
    with pytest.raises(ProjectError, match=r"\[kb\] backend: expected 'faiss' or 'chronos'"):
        project_paths(tmp_path)
    assert project_paths(tmp_path / "elsewhere").kb_backend == "faiss"  # no soma.toml there
