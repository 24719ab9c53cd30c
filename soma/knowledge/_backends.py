"""Knowledge-base backends by name: which vector index sits beside the SQLite records."""

from __future__ import annotations

from soma.errors import ValidationError
from soma.knowledge._index_base import VectorIndex

__all__ = ["BACKENDS", "resolve_backend"]

BACKENDS: tuple[str, ...] = ("faiss", "chronos")
# What ``KnowledgeBase(backend=None)`` uses (the knowledge-base tests switch it per run).
DEFAULT_BACKEND = "faiss"


def resolve_backend(name: str | None) -> tuple[str, type[VectorIndex]]:
    """The name and index class of backend ``name`` (None: the default); ``"chronos"`` needs
    Python 3.12 and its extra (a one-line KnowledgeBaseError otherwise)."""
    name = DEFAULT_BACKEND if name is None else name
    if name == "faiss":
        from soma.knowledge._vectors import FaissIndex

        return name, FaissIndex
    if name == "chronos":
        from soma.knowledge._chronos import ChronosIndex, import_chronos

        import_chronos()  # fail here, at construction, not at the first query
        return name, ChronosIndex
    raise ValidationError("backend", f"expected one of {', '.join(BACKENDS)}, got {name!r}")
