"""The ChronosVector backend: a temporal HNSW index whose points are (research line, start time).

ChronosVector identifies a point by ``(entity_id, timestamp)`` and returns those, not labels,
so each experiment is filed as entity = its research line (a stable 63-bit hash of the name;
0 for no line) and timestamp = its start time in microseconds times 1024 plus a tie-break in
the low ten bits. The tie-break keeps points unique when experiments of one line start in the
same microsecond, and gives a re-embedded experiment a fresh point while its old one stays as
a tombstone (the index cannot delete). A time window therefore maps exactly onto a timestamp
range, and the index filters on it during its own search (``filter_start`` / ``filter_end``).

The mapping (entity, timestamp) → seq and the vectors (rows) live here and are saved with the
graph in one file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from soma.errors import KnowledgeBaseError
from soma.knowledge._index_base import PointBatch, TimeWindow, VectorIndex

__all__ = ["ChronosIndex", "entity_of", "import_chronos", "timestamp_of"]

_FORMAT = 1
_TIE_BITS = 10
_TIES = 1 << _TIE_BITS
M = 16
# The graph walk's breadth: on 100k MiniLM-like 384-d points built at BULK_EF_CONSTRUCTION,
# recall@10 was 0.885 at 128, 0.948 at 192, 0.965 at 256 and 0.986 at 384; a search took
# 1.96, 2.20, 2.90 and 4.43 ms at p50 (2 loaded cores). 256 is the first above 0.95.
EF_SEARCH = 256
# Bulk loads (a rebuild, a first catch-up) build the graph at a lower breadth: 200 (the
# library's default) took 65 s for 20k 384-d points on 2 cores.
BULK_EF_CONSTRUCTION = 64
EF_CONSTRUCTION = 200
# A window holding at most this many live points is scored exactly from the index's own
# vectors: cheaper than a graph walk that must skip everything outside it (a 10k-point
# window of 100k: 1 ms exact from one slice, 7 ms for the filtered walk, on 2 loaded cores).
EXACT_WINDOW = 16_384


def import_chronos() -> Any:
    """The ``chronos_vector`` module, or a one-line KnowledgeBaseError saying what it needs."""
    try:
        import chronos_vector
    except ImportError as exc:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise KnowledgeBaseError(
            f"the 'chronos' knowledge-base backend needs Python 3.12 and the chronos extra "
            f"(pip install 'soma-research[chronos]'); this is Python {version} ({exc})"
        ) from None
    return chronos_vector


def entity_of(line: str | None) -> int:
    """The ChronosVector entity of a research line: a stable hash, 0 for no line."""
    if line is None:
        return 0
    digest = hashlib.blake2b(line.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") & ((1 << 63) - 1)) | 1


def timestamp_of(started: float) -> int:
    """The first index timestamp of a start time (epoch seconds); ties take the next ones."""
    return round(started * 1_000_000) << _TIE_BITS


def _window_bounds(window: TimeWindow | None) -> tuple[int | None, int | None]:
    if window is None:
        return None, None
    low = None if window.start is None else timestamp_of(window.start)
    high = None if window.end is None else timestamp_of(window.end) + _TIES - 1
    return low, high


class ChronosIndex(VectorIndex):
    """Cosine search over a ChronosVector ``TemporalIndex``, keyed by experiment ``seq``.

    Beside the graph it keeps the vectors in one array (a row per point, in insertion order):
    while the index is small (``hnsw_threshold`` live points, as FAISS stays flat) and for
    windows that hold few points, the answer is computed exactly from those rows — a graph walk
    over near-orthogonal vectors can stop early — and a rebuild needs no read-back.
    """

    backend = "chronos"
    file_suffix = "cvx"
    pushes_time_window = True

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 10_000,
        ef_search: int = EF_SEARCH,
        **_options: Any,
    ) -> None:
        super().__init__(dim)
        self._cv = import_chronos()
        self.hnsw_threshold = hnsw_threshold
        self.ef_search = ef_search
        self.index: Any = self._new_graph()
        self.seq_at: dict[tuple[int, int], int] = {}  # every point → seq, -1 once dead
        self.row_of: dict[int, int] = {}  # live seq → row
        self.rows = 0
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.row_seq = np.zeros(0, dtype=np.int64)  # -1 for a dead row
        self.row_entity = np.zeros(0, dtype=np.uint64)
        self.row_stamp = np.zeros(0, dtype=np.int64)

    def _new_graph(self) -> Any:
        return self._cv.TemporalIndex(
            m=M, ef_construction=EF_CONSTRUCTION, ef_search=self.ef_search
        )

    @property
    def kind(self) -> str:
        """``"exact"`` while small, ``"hnsw"`` (the graph walk) beyond ``hnsw_threshold``."""
        return "exact" if self.n_live <= self.hnsw_threshold else "hnsw"

    # -- contents ------------------------------------------------------------------------------
    @property
    def n_live(self) -> int:
        return len(self.row_of)

    @property
    def n_dead(self) -> int:
        return self.rows - len(self.row_of)

    def _grow(self, extra: int) -> None:
        need = self.rows + extra
        if need <= self.vectors.shape[0]:
            return
        capacity = max(need, 2 * self.vectors.shape[0], 64)
        for name in ("vectors", "row_seq", "row_entity", "row_stamp"):
            old = getattr(self, name)
            grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            grown[: self.rows] = old[: self.rows]
            setattr(self, name, grown)

    def _free_point(self, entity: int, started: float) -> tuple[int, int]:
        stamp = timestamp_of(started)
        # Past 1024 experiments of one line in one microsecond the point spills into the next
        # microsecond: unique still, and off by at most a few microseconds in a window.
        while (entity, stamp) in self.seq_at:
            stamp += 1
        return entity, stamp

    def upsert(self, points: PointBatch) -> None:
        if len(points) == 0:
            return
        last = {int(s): i for i, s in enumerate(points.seqs.tolist())}
        self._grow(len(last))
        first = self.rows
        for row, (seq, i) in enumerate(last.items(), start=first):
            self._kill(seq)
            point = self._free_point(entity_of(points.lines[i]), float(points.started[i]))
            self.seq_at[point] = seq
            self.row_of[seq] = row
            self.row_seq[row] = seq
            self.row_entity[row], self.row_stamp[row] = point
        picked = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        self.vectors[first : first + len(last)] = points.vectors[picked]
        self.rows = first + len(last)
        self._insert(slice(first, self.rows))
        self.unsaved += len(last)
        self.maybe_rebuild()

    def _insert(self, rows: slice) -> None:
        entities, stamps = self.row_entity[rows], self.row_stamp[rows]
        vectors = np.ascontiguousarray(self.vectors[rows])
        if len(entities) == 1:
            self.index.insert(int(entities[0]), int(stamps[0]), vectors[0].tolist())
        else:
            ef = BULK_EF_CONSTRUCTION if len(entities) > 256 else None
            self.index.bulk_insert(entities, stamps, vectors, ef_construction=ef)

    def _kill(self, seq: int) -> bool:
        row = self.row_of.pop(seq, None)
        if row is None:
            return False
        self.seq_at[(int(self.row_entity[row]), int(self.row_stamp[row]))] = -1
        self.row_seq[row] = -1
        return True

    def remove(self, seqs: np.ndarray) -> None:
        removed = sum(self._kill(int(s)) for s in np.asarray(seqs).tolist())
        if removed:
            self.unsaved += removed
            self.maybe_rebuild()

    def configure(self, *, hnsw_threshold: int) -> None:
        self.hnsw_threshold = hnsw_threshold

    def maybe_rebuild(self) -> None:
        if self.n_dead > max(64, self.rows // 4):
            self.rebuild()

    def rebuild(self) -> None:
        """A fresh graph from the live rows, in their order (tombstones dropped)."""
        live = np.flatnonzero(self.row_seq[: self.rows] >= 0)
        for name in ("vectors", "row_seq", "row_entity", "row_stamp"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[live]))
        self.rows = len(live)
        self.row_of = {int(s): i for i, s in enumerate(self.row_seq.tolist())}
        self.seq_at = {
            (int(e), int(t)): int(s)
            for e, t, s in zip(self.row_entity, self.row_stamp, self.row_seq, strict=True)
        }
        self.index = self._new_graph()
        if self.rows:
            self._insert(slice(0, self.rows))
        self.unsaved += 1

    def vectors_of(self, seqs: list[int]) -> np.ndarray:
        rows = np.array([self.row_of[s] for s in seqs], dtype=np.int64)
        return np.ascontiguousarray(self.vectors[rows]).reshape(len(rows), self.dim)

    def trajectory(
        self, line: str | None, window: TimeWindow | None = None
    ) -> list[tuple[int, np.ndarray]]:
        """``(seq, vector)`` of a line's live experiments in start order, read from the
        temporal index (``TemporalIndex.trajectory`` of the line's entity, within ``window``)."""
        entity = entity_of(line)
        low, high = _window_bounds(window)
        out = []
        for stamp, vector in self.index.trajectory(entity, start=low, end=high):
            seq = self.seq_at.get((entity, stamp), -1)
            if seq >= 0:
                out.append((seq, np.asarray(vector, dtype=np.float32)))
        return out

    def _live_rows(self, low: int | None, high: int | None) -> np.ndarray:
        stamps = self.row_stamp[: self.rows]
        keep = self.row_seq[: self.rows] >= 0
        if low is not None:
            keep &= stamps >= low
        if high is not None:
            keep &= stamps <= high
        return np.flatnonzero(keep)

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        accept: Callable[[int], bool] | None = None,
        window: TimeWindow | None = None,
    ) -> list[tuple[int, float]]:
        """Nearest live points inside ``window``; the index skips points outside it itself.

        The graph walk keeps ``ef`` candidates that meet the window, so its breadth is scaled
        by the share of the index the window holds; while the index is small, or the window
        holds few points, the points inside it are scored exactly.
        """
        if self.n_live == 0 or k <= 0:
            return []
        low, high = _window_bounds(window)
        bounded = low is not None or high is not None
        rows = self._live_rows(low, high) if bounded else None
        inside = self.n_live if rows is None else len(rows)
        if inside == 0:
            return []
        if self.n_live <= self.hnsw_threshold or inside <= EXACT_WINDOW:
            if rows is None:
                rows = self._live_rows(None, None)
            return self._score_rows(query, rows, k, accept)
        total = self.rows
        share = inside / total
        fetch = min(total, math.ceil((k + self.n_dead) / share))
        if accept is not None:
            fetch = min(total, max(fetch, math.ceil(max(4 * k, 64) / share)))
        vector = np.ascontiguousarray(query, dtype=np.float32).ravel()
        while True:
            self.index.set_ef_search(max(self.ef_search, fetch))
            found = self.index.search(vector, k=fetch, filter_start=low, filter_end=high)
            hits: list[tuple[int, float]] = []
            for entity, stamp, distance in found:
                seq = self.seq_at.get((entity, stamp), -1)
                if seq >= 0 and (accept is None or accept(seq)):
                    # Squared L2 between unit vectors is 2 - 2·cos.
                    hits.append((seq, 1.0 - float(distance) / 2.0))
            if len(hits) >= k or fetch >= total:
                return hits[:k]
            fetch = min(total, fetch * 4)

    def _score_rows(
        self,
        query: np.ndarray,
        rows: np.ndarray,
        k: int,
        accept: Callable[[int], bool] | None = None,
    ) -> list[tuple[int, float]]:
        if accept is not None:
            rows = np.array([r for r in rows.tolist() if accept(int(self.row_seq[r]))], np.int64)
        if len(rows) == 0:
            return []
        # einsum, not BLAS: no worker threads to spin on a busy machine for one small product.
        q = np.asarray(query, np.float32).ravel()
        first, span = int(rows.min()), int(rows.max()) - int(rows.min()) + 1
        if span <= 2 * len(rows):
            # Rows are stored in insertion order, so a time window is (nearly) one run of
            # rows: score that slice in place. A fancy-indexed copy of 10k x 384 floats took
            # 5.5 ms here, the slice 0.6 ms.
            scores = np.einsum("ij,j->i", self.vectors[first : first + span], q)[rows - first]
        else:
            scores = np.einsum("ij,j->i", self.vectors[rows], q)
        if len(scores) > k:  # the top k in linear time, then only they are sorted
            top = np.argpartition(-scores, k)[:k]
            order = top[np.argsort(-scores[top], kind="stable")]
        else:
            order = np.argsort(-scores, kind="stable")
        return [(int(self.row_seq[rows[i]]), float(scores[i])) for i in order]

    def exact(
        self, query: np.ndarray, seqs: list[int], k: int, window: TimeWindow | None = None
    ) -> list[tuple[int, float]]:
        low, high = _window_bounds(window)
        rows = np.array([self.row_of[s] for s in seqs if s in self.row_of], dtype=np.int64)
        if len(rows):
            stamps = self.row_stamp[rows]
            if low is not None:
                rows = rows[stamps >= low]
                stamps = self.row_stamp[rows]
            if high is not None:
                rows = rows[stamps <= high]
        if len(rows) == 0 or k <= 0:
            return []
        return self._score_rows(query, rows, k)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """One file: the graph (the library's own save), the rows and the header, renamed in."""
        header = dict(meta, format=_FORMAT, dim=self.dim, backend=self.backend)
        header.update(synced=self.synced, anchor=None if self.anchor is None else list(self.anchor))
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            raw = Path(scratch) / "index.cvx"
            self.index.save(str(raw))
            payload = np.frombuffer(raw.read_bytes(), dtype=np.uint8)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        n = self.rows
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    meta=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                    index=payload,
                    vectors=self.vectors[:n],
                    seqs=self.row_seq[:n],
                    entities=self.row_entity[:n],
                    stamps=self.row_stamp[:n],
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.unsaved = 0

    @classmethod
    def load(cls, path: Path, **options: Any) -> tuple[ChronosIndex, dict[str, Any]] | None:
        try:
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as arrays:
                meta = json.loads(arrays["meta"].tobytes().decode())
                payload = arrays["index"].tobytes()
                columns = {
                    n: np.array(arrays[n]) for n in ("vectors", "seqs", "entities", "stamps")
                }
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if meta.get("format") != _FORMAT or meta.get("backend") != cls.backend:
            return None
        self = cls(int(meta["dim"]), **options)
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            raw = Path(scratch) / "index.cvx"
            raw.write_bytes(payload)
            try:
                self.index = self._cv.TemporalIndex.load(str(raw))
            except (OSError, ValueError, RuntimeError):
                return None
        n = len(columns["seqs"])
        if len(self.index) != n or columns["vectors"].shape != (n, self.dim):
            return None
        self.index.set_ef_search(self.ef_search)
        self.vectors = np.ascontiguousarray(columns["vectors"], dtype=np.float32)
        self.row_seq = columns["seqs"].astype(np.int64)
        self.row_entity = columns["entities"].astype(np.uint64)
        self.row_stamp = columns["stamps"].astype(np.int64)
        self.rows = n
        self.seq_at = {
            (int(e), int(t)): int(s)
            for e, t, s in zip(self.row_entity, self.row_stamp, self.row_seq, strict=True)
        }
        self.row_of = {int(s): i for i, s in enumerate(self.row_seq.tolist()) if s >= 0}
        self.synced = int(meta.get("synced", 0))
        anchor = meta.get("anchor")
        if isinstance(anchor, list) and len(anchor) == 2:
            self.anchor = (int(anchor[0]), str(anchor[1]))
        return self, meta
