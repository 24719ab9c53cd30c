"""The vector-index protocol behind the knowledge base, and the time stamps its points carry.

SQLite is the source of truth: every experiment's vector is stored there. A vector index is a
cache of those rows that answers nearest-neighbour queries; :class:`SemanticIndex` keeps it in
step (``synced`` / ``anchor`` say which database state it reflects), saves it beside the
database and rebuilds it from the stored vectors when it is missing, stale or diverged. Two
implementations: FAISS (``_vectors.FaissIndex``) and ChronosVector (``_chronos.ChronosIndex``),
which also files each point under its research line and start time, so a time window is
searched inside the index instead of being filtered afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

__all__ = ["PointBatch", "TimeWindow", "VectorIndex"]


@dataclass(frozen=True)
class TimeWindow:
    """Start times (epoch seconds, inclusive) a query is limited to; None leaves a side open.

    A window that ends before it starts holds nothing (as the same bounds in SQL would)."""

    start: float | None = None
    end: float | None = None

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end is None


@dataclass(frozen=True)
class PointBatch:
    """Experiments to (re)index: their seq numbers, vectors, research lines and start times."""

    seqs: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dim), unit rows
    lines: list[str | None]
    started: np.ndarray  # float64 (n,) epoch seconds

    def __len__(self) -> int:
        return int(self.seqs.shape[0])


class VectorIndex(ABC):
    """Inner-product (cosine) search over unit vectors keyed by experiment ``seq``.

    A seq added again replaces its earlier vector. Implementations keep ``synced`` (the highest
    experiment ``text_version`` reflected), ``anchor`` (the ``(seq, id)`` of that experiment,
    so a copy of the database restored from a backup is recognised) and ``unsaved`` (changes
    since the last save) for :class:`SemanticIndex`.
    """

    backend: ClassVar[str]
    file_suffix: ClassVar[str]
    # Whether ``search(window=...)`` filters by start time inside the index; if not, callers
    # put the time window into the SQL filter checked on the results instead.
    pushes_time_window: ClassVar[bool] = False

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.synced = 0
        self.anchor: tuple[int, str] | None = None
        self.unsaved = 0

    @property
    @abstractmethod
    def n_live(self) -> int:
        """Experiments the index answers for."""

    @property
    @abstractmethod
    def n_dead(self) -> int:
        """Replaced or removed vectors still taking space until the next rebuild."""

    @abstractmethod
    def upsert(self, points: PointBatch) -> None:
        """Add vectors; a seq already present has its old vector replaced."""

    @abstractmethod
    def remove(self, seqs: np.ndarray) -> None:
        """Forget these seqs (absent ones are ignored)."""

    @abstractmethod
    def search(
        self,
        query: np.ndarray,
        k: int,
        accept: Callable[[int], bool] | None = None,
        window: TimeWindow | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(seq, cosine)`` pairs, best first, among seqs ``accept`` takes."""

    @abstractmethod
    def exact(
        self, query: np.ndarray, seqs: list[int], k: int, window: TimeWindow | None = None
    ) -> list[tuple[int, float]]:
        """Exact scores against the given seqs (those present), best ``k``."""

    @abstractmethod
    def vectors_of(self, seqs: list[int]) -> np.ndarray:
        """The stored vectors of these seqs, one row each (all must be present)."""

    @abstractmethod
    def rebuild(self) -> None:
        """Rebuild from the index's own live vectors (dropping dead ones)."""

    @abstractmethod
    def maybe_rebuild(self) -> None:
        """Rebuild when the implementation finds it worth it (e.g. many dead vectors)."""

    @abstractmethod
    def configure(self, *, hnsw_threshold: int) -> None:
        """Apply the knowledge base's settings to an index loaded from a file."""

    @abstractmethod
    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write atomically to ``path`` with ``meta`` (and synced / anchor) in its header."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, **options: Any) -> tuple[Self, dict[str, Any]] | None:
        """The index saved at ``path`` and its metadata, or None if absent or unreadable."""
