"""The FAISS vector index (the default backend): exact while small, HNSW when large.

Positions in the FAISS index map to experiment ``seq`` numbers through ``labels``. An
experiment whose text changed is re-added at a new position and its old position becomes a
tombstone (label -1), because HNSW cannot remove vectors; when tombstones pass a quarter of
the index, or the index outgrows the exact (flat) kind, it is rebuilt from its own live vectors.

The index is a cache of what SQLite holds: ``synced`` is the highest experiment
``text_version`` it reflects, so the knowledge base can bring it up to date incrementally and
rebuild it from SQLite when the file is missing, unreadable or from another database. It is
saved as one ``.npz``-format file written to a temporary name and renamed into place, so
readers in other processes only ever see a whole file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from soma.knowledge._index_base import PointBatch, TimeWindow, VectorIndex

__all__ = ["EF_SEARCH", "FaissIndex"]

_FORMAT = 1
# HNSW breadth at query time. Measured on 100k clustered MiniLM-like vectors (M=32, one
# thread): 64 → recall@10 0.75, 0.26 ms; 128 → 0.91, 0.43 ms; 256 → 0.985, 0.66 ms.
EF_SEARCH = 256


def _no_window(window: TimeWindow | None) -> None:
    if window is not None and not window.unbounded:
        raise ValueError("the FAISS index has no start times: filter the window afterwards")


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run one query's search on the calling thread only.

    For a single query OpenMP's worker threads cost more than they save, and on a busy
    machine their spin-waiting multiplies latency (measured here: flat search over 10k
    vectors, 0.4 ms on one thread vs 40 ms on two under load). The OpenMP thread count is
    per calling thread, so index builds elsewhere keep their parallelism.
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class FaissIndex(VectorIndex):
    """Inner-product search over unit vectors, keyed by experiment ``seq`` (FAISS).

    It does not know start times: a time window is checked on its answers (post-filtering).
    """

    backend = "faiss"
    file_suffix = "faiss"

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 10_000,
        hnsw_m: int = 32,
        ef_search: int = EF_SEARCH,
    ) -> None:
        super().__init__(dim)
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.index: Any = faiss.IndexFlatIP(dim)
        self.kind = "flat"
        self.labels = np.zeros(0, dtype=np.int64)
        self.position: dict[int, int] = {}

    # -- contents ------------------------------------------------------------------------------
    @property
    def n_live(self) -> int:
        return len(self.position)

    @property
    def n_dead(self) -> int:
        return int(self.labels.shape[0]) - len(self.position)

    def upsert(self, points: PointBatch) -> None:
        """Add vectors for ``seqs``; an seq already present gets its old vector tombstoned."""
        seqs = points.seqs
        if len(seqs) == 0:
            return
        vectors = np.ascontiguousarray(points.vectors, dtype=np.float32).reshape(-1, self.dim)
        # Within one batch the last vector of a seq wins.
        last: dict[int, int] = {int(s): i for i, s in enumerate(seqs)}
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        for seq in last:
            old = self.position.get(seq)
            if old is not None:
                self.labels[old] = -1
        start = int(self.labels.shape[0])
        self.index.add(vectors[rows])
        new_labels = np.fromiter(last.keys(), dtype=np.int64, count=len(last))
        self.labels = np.concatenate([self.labels, new_labels])
        for offset, seq in enumerate(last):
            self.position[seq] = start + offset
        self.unsaved += len(last)
        self.maybe_rebuild()

    def remove(self, seqs: np.ndarray) -> None:
        """Tombstone these seqs (HNSW cannot delete vectors; a rebuild drops them)."""
        for seq in np.asarray(seqs, dtype=np.int64).tolist():
            old = self.position.pop(int(seq), None)
            if old is not None:
                self.labels[old] = -1
                self.unsaved += 1
        self.maybe_rebuild()

    def configure(self, *, hnsw_threshold: int) -> None:
        # Saved under another threshold: switch kind now rather than at the next insert.
        self.hnsw_threshold = hnsw_threshold
        self.maybe_rebuild()

    def maybe_rebuild(self) -> None:
        """Rebuild if the index outgrew the flat kind or holds too many tombstones."""
        too_big_for_flat = self.kind == "flat" and self.n_live > self.hnsw_threshold
        too_many_dead = self.n_dead > max(64, self.labels.shape[0] // 4)
        if too_big_for_flat or too_many_dead:
            self.rebuild()

    def rebuild(self) -> None:
        """Rebuild from the live vectors: flat up to ``hnsw_threshold``, HNSW beyond."""
        seqs = np.fromiter(self.position.keys(), dtype=np.int64, count=len(self.position))
        positions = np.fromiter(self.position.values(), dtype=np.int64, count=len(self.position))
        vectors = self.reconstruct(positions)
        if len(seqs) > self.hnsw_threshold:
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = self.ef_search
            self.kind = "hnsw"
        else:
            index = faiss.IndexFlatIP(self.dim)
            self.kind = "flat"
        if len(seqs):
            index.add(vectors)
        self.index = index
        self.labels = seqs
        self.position = {int(s): i for i, s in enumerate(seqs)}
        self.unsaved += 1

    def vectors_of(self, seqs: list[int]) -> np.ndarray:
        return self.reconstruct(np.array([self.position[s] for s in seqs], dtype=np.int64))

    def reconstruct(self, positions: np.ndarray) -> np.ndarray:
        if len(positions) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with _single_thread():
            vectors = self.index.reconstruct_batch(np.asarray(positions, dtype=np.int64))
        return np.asarray(vectors, dtype=np.float32)

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        accept: Callable[[int], bool] | None = None,
        window: TimeWindow | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(seq, score)`` pairs, skipping tombstones and seqs ``accept`` refuses.

        ``window`` must be unbounded: this index has no start times (the caller filters).
        Asks FAISS for more than ``k`` when some answers may be dropped, widening until ``k``
        survive or the whole index was asked.
        """
        _no_window(window)
        total = int(self.index.ntotal)
        if total == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        fetch = min(total, k + self.n_dead if accept is None else max(4 * k, 64) + self.n_dead)
        with _single_thread():
            return self._search(query, k, fetch, total, accept)

    def _search(
        self,
        query: np.ndarray,
        k: int,
        fetch: int,
        total: int,
        accept: Callable[[int], bool] | None,
    ) -> list[tuple[int, float]]:
        while True:
            params = None
            if self.kind == "hnsw":  # per call: the index's own setting stays untouched
                params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))
            scores, positions = self.index.search(query, fetch, params=params)
            hits: list[tuple[int, float]] = []
            for pos, score in zip(positions[0], scores[0], strict=True):
                if pos < 0:
                    continue
                seq = int(self.labels[pos])
                if seq >= 0 and (accept is None or accept(seq)):
                    hits.append((seq, float(score)))
            if len(hits) >= k or fetch >= total:
                return hits[:k]
            fetch = min(total, fetch * 4)

    def exact(
        self, query: np.ndarray, seqs: list[int], k: int, window: TimeWindow | None = None
    ) -> list[tuple[int, float]]:
        """Exact scores of ``query`` against the given seqs (those in the index), best ``k``."""
        _no_window(window)
        present = [s for s in seqs if s in self.position]
        if not present or k <= 0:
            return []
        vectors = self.reconstruct(np.array([self.position[s] for s in present], dtype=np.int64))
        # einsum, not BLAS: no worker threads to spin on a busy machine for one small product.
        scores = np.einsum("ij,j->i", vectors, np.asarray(query, dtype=np.float32).ravel())
        order = np.argsort(-scores, kind="stable")[:k]
        return [(present[i], float(scores[i])) for i in order]

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write atomically: a temporary file in the same folder renamed over ``path``."""
        header = dict(meta, format=_FORMAT, dim=self.dim, kind=self.kind, synced=self.synced)
        header["anchor"] = None if self.anchor is None else list(self.anchor)
        payload = faiss.serialize_index(self.index)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    meta=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                    index=payload,
                    labels=self.labels,
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.unsaved = 0

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        hnsw_threshold: int = 10_000,
        hnsw_m: int = 32,
        ef_search: int = EF_SEARCH,
        **_options: Any,
    ) -> tuple[FaissIndex, dict[str, Any]] | None:
        """The index saved at ``path`` and its metadata, or None if absent or unreadable."""
        try:
            data = path.read_bytes()
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                meta = json.loads(arrays["meta"].tobytes().decode())
                index = faiss.deserialize_index(np.ascontiguousarray(arrays["index"]))
                labels = np.asarray(arrays["labels"], dtype=np.int64)
        except (OSError, ValueError, KeyError, RuntimeError, EOFError):
            return None
        if meta.get("format") != _FORMAT or index.ntotal != labels.shape[0]:
            return None
        if index.d != meta.get("dim"):
            return None
        self = cls(meta["dim"], hnsw_threshold=hnsw_threshold, hnsw_m=hnsw_m, ef_search=ef_search)
        self.index = index
        self.kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        if self.kind == "hnsw":
            index.hnsw.efSearch = ef_search
        self.labels = labels
        self.position = {int(s): i for i, s in enumerate(labels) if s >= 0}
        self.synced = int(meta.get("synced", 0))
        anchor = meta.get("anchor")
        if isinstance(anchor, list) and len(anchor) == 2:
            self.anchor = (int(anchor[0]), str(anchor[1]))
        return self, meta
