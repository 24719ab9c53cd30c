"""The semantic side of the knowledge base: embeddings in SQLite, a vector index kept in step.

Every experiment's vector is written to SQLite in the same transaction as the experiment
(``embeddings`` table, one row per experiment and embedder). The vector index (FAISS or
ChronosVector, see ``_index_base``) is a cache of those rows: each query first brings it up
to date with whatever any process wrote since
(experiments carry a ``text_version`` that increases with every insert or text change), and
it is loaded from, and saved to, a file beside the database.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from soma.errors import KnowledgeBaseError
from soma.knowledge._embed import Embedder, experiment_text
from soma.knowledge._index_base import PointBatch, TimeWindow, VectorIndex
from soma.knowledge._records import Experiment
from soma.knowledge._store import Store
from soma.knowledge._vectors import FaissIndex

__all__ = ["QueryConditions", "SemanticIndex", "SqlFilter", "text_of"]

# A filtered query checks the filter on at most this many nearest neighbours before asking
# SQLite for every match; below EXACT_LIMIT matches those are scored exactly.
POSTFILTER_LIMIT = 4096
EXACT_LIMIT = 8192
_QUERY_CACHE = 32

_CATCH_UP_SQL = (
    "SELECT e.seq, e.id, e.text_version, e.line, e.started, e.name, e.hypothesis, "
    "e.pipeline_summary, e.notes, "
    "e.tags, v.text_version AS vector_version, v.vector FROM experiments e "
    "LEFT JOIN embeddings v ON v.seq = e.seq AND v.model = ? "
    "WHERE e.text_version > ? ORDER BY e.text_version LIMIT ?"
)
# Rows with no current vector from a model, oldest text first, past a watermark.
_MISSING_SQL = (
    "SELECT e.seq, e.text_version, e.name, e.hypothesis, e.pipeline_summary, e.notes, e.tags "
    "FROM experiments e LEFT JOIN embeddings v ON v.seq = e.seq AND v.model = ? "
    "WHERE e.text_version > ? AND (v.vector IS NULL OR v.text_version != e.text_version) "
    "ORDER BY e.text_version LIMIT ?"
)
_UPSERT_VECTOR_SQL = (
    "INSERT OR REPLACE INTO embeddings (seq, model, text_version, vector) VALUES (?, ?, ?, ?)"
)


def text_of(exp: Experiment | Mapping[str, Any]) -> str:
    """The searchable text of an experiment (a record, or a row with JSON ``tags``)."""
    get = exp.get if isinstance(exp, Mapping) else lambda key: getattr(exp, key)
    tags = get("tags")
    if isinstance(tags, str):
        tags = json.loads(tags)
    return experiment_text(
        name=get("name"),
        hypothesis=get("hypothesis"),
        pipeline_summary=get("pipeline_summary"),
        notes=get("notes"),
        tags=tags or [],
    )


class QueryConditions(Protocol):
    """Structured conditions a semantic query must also meet (a ``where`` clause), not to be
    confused with ``soma.Filter``, a pipeline step."""

    def accepts(self, seqs: Sequence[int]) -> set[int]:
        """Which of these experiments meet the conditions."""
        ...

    def everything(self) -> list[int]:
        """Every experiment that meets the conditions."""
        ...


class SqlFilter:
    """A query's structured conditions, checked by SQLite on the experiments asked about."""

    def __init__(self, store: Store, clause: str, params: list[Any]) -> None:
        self.store, self.clause, self.params = store, clause, params

    def accepts(self, seqs: Sequence[int]) -> set[int]:
        if not seqs:
            return set()
        marks = ", ".join("?" for _ in seqs)
        sql = f"SELECT seq FROM experiments WHERE seq IN ({marks}) AND {self.clause}"
        args = [*seqs, *self.params]
        return self.store.read(lambda db: {r[0] for r in db.conn.execute(sql, args)})

    def everything(self) -> list[int]:
        sql = f"SELECT seq FROM experiments WHERE {self.clause}"
        return self.store.read(lambda db: [r[0] for r in db.conn.execute(sql, self.params)])


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "embedder"


class SemanticIndex:
    """Embeds texts and answers nearest-neighbour queries over a knowledge base's experiments."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        *,
        hnsw_threshold: int,
        index_type: type[VectorIndex] = FaissIndex,
    ) -> None:
        self.store = store
        self.index_type = index_type
        self.embedder = embedder
        self.hnsw_threshold = hnsw_threshold
        self.index: VectorIndex | None = None
        self._lock = threading.RLock()
        #: Whether a query embeds the rows still missing a vector before it searches. An
        #: ``EmbeddingWorker`` turns it off while it embeds them in the background.
        self.wait_for_vectors = True
        self._vectors_upto = 0  # every row with a lower text_version has had a vector
        self._queries: dict[str, np.ndarray] = {}  # query texts embedded lately
        self._query_lock = threading.Lock()

    @property
    def path(self) -> Path | None:
        """Where the index for this embedder is saved (None for an in-memory database)."""
        if self.store.in_memory:
            return None
        db = self.store.path
        suffix = self.index_type.file_suffix
        return db.with_name(f"{db.stem}.vectors.{_slug(self.embedder.name)}.{suffix}")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``, checking the embedder kept its promise about the shape."""
        dim = self.embedder.dim
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        vectors = np.ascontiguousarray(self.embedder.embed(list(texts)), dtype=np.float32)
        if vectors.shape != (len(texts), dim):
            raise KnowledgeBaseError(
                f"embedder {self.embedder.name!r} returned shape {vectors.shape}, expected "
                f"({len(texts)}, {dim})"
            )
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """A query text's vector; the last few are kept (a run asks the same goal again)."""
        with self._query_lock:
            vector = self._queries.pop(text, None)
        if vector is None:
            vector = self.embed([text])[0]
        with self._query_lock:
            self._queries[text] = vector
            while len(self._queries) > _QUERY_CACHE:
                self._queries.pop(next(iter(self._queries)))
        return vector

    def embed_missing(self, chunk: int = 32, should_stop: Any = None) -> int:
        """Embed and store every row with no current vector from this embedder, in batches
        of ``chunk`` (without the index lock: queries go on meanwhile); return how many."""
        model, done = self.embedder.name, 0
        while should_stop is None or not should_stop():
            upto = self._vectors_upto
            args = [model, upto, chunk]
            rows = self.store.read(lambda db, args=args: list(db.query(_MISSING_SQL, args)))
            if not rows:
                return done
            vectors = self.embed([text_of(r) for r in rows])
            self._write_vectors(
                [
                    (r["seq"], model, r["text_version"], v.tobytes())
                    for r, v in zip(rows, vectors, strict=True)
                ]
            )
            self._vectors_upto = max(upto, int(rows[-1]["text_version"]))
            done += len(rows)
        return done

    def backlog(self) -> int:
        """How many experiments a query cannot find yet (recorded, not yet embedded)."""
        with self._lock:
            synced = self.index.synced if self.index is not None else 0
        sql = "SELECT count(*) FROM experiments WHERE text_version > ?"
        return int(self.store.read(lambda db: db.conn.execute(sql, [synced]).fetchone()[0]))

    # -- queries -------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        where: QueryConditions | None = None,
        window: TimeWindow | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest ``(seq, cosine)`` pairs, only among experiments ``where`` accepts.

        ``window`` (start times) is searched inside the index; only an index that
        ``pushes_time_window`` takes one (for FAISS the caller puts it into ``where``).

        With a filter, the nearest neighbours are fetched first and the filter checked on just
        those (a few hundred rows, not the table), widening the fetch eightfold until ``k``
        pass. Only a very selective filter, that leaves fewer than ``k`` among the
        ``POSTFILTER_LIMIT`` nearest, makes SQLite list every match, which are then scored
        exactly (or, past ``EXACT_LIMIT`` matches, searched through the index).
        """
        with self._lock:
            index = self.synced()
            if where is None:
                return index.search(query, k, window=window)
            total = index.n_live
            fetch = min(total, max(100, 20 * k))
            while fetch:
                nearest = index.search(query, fetch, window=window)
                passed = where.accepts([seq for seq, _ in nearest])
                hits = [(seq, score) for seq, score in nearest if seq in passed]
                if len(hits) >= k or fetch >= total:
                    return hits[:k]
                if fetch >= POSTFILTER_LIMIT:
                    break
                fetch = min(total, POSTFILTER_LIMIT, fetch * 8)
            candidates = where.everything()
            if len(candidates) <= EXACT_LIMIT:
                return index.exact(query, candidates, k, window=window)
            return index.search(query, k, set(candidates).__contains__, window=window)

    def line_vectors(
        self, line: str, seqs: list[int], window: TimeWindow | None
    ) -> tuple[np.ndarray, str]:
        """The vectors of a line's experiments ``seqs`` (in that order) and where they came
        from: the temporal index's trajectory of the line on chronos, the index otherwise."""
        with self._lock:
            index = self.synced()
            trajectory = getattr(index, "trajectory", None)
            if trajectory is None:
                return index.vectors_of(seqs), f"{index.backend} index"
            found = dict(trajectory(line, window))
            # A start time within a microsecond of a window bound may fall on the other side
            # of it in the index than in SQLite: those few come from the index's rows.
            rest = [s for s in seqs if s not in found]
            if rest:
                found.update(zip(rest, index.vectors_of(rest), strict=True))
            vectors = np.zeros((len(seqs), index.dim), dtype=np.float32)
            for i, seq in enumerate(seqs):
                vectors[i] = found[seq]
            return vectors, "chronos temporal index (the line's entity trajectory)"

    def synced(self) -> VectorIndex:
        """The index, loaded or rebuilt if needed, with every stored experiment in it."""
        with self._lock:
            latest = self.store.read(
                lambda db: int(
                    db.conn.execute(
                        "SELECT coalesce(max(text_version), 0) FROM experiments"
                    ).fetchone()[0]
                )
            )
            index = self.index
            if index is None or index.synced > latest:
                # A saved index newer than the database means the database was replaced.
                index = self._load(latest) or self.index_type(
                    self.embedder.dim, hnsw_threshold=self.hnsw_threshold
                )
                self.index = index
            if index.synced < latest:
                self._catch_up(index)
                if index.unsaved >= max(256, index.n_live // 10):
                    self._save(index)
            return index

    # -- persistence ---------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Bring the index up to date and save it now."""
        with self._lock:
            self._save(self.synced())
        return self.path

    def close(self) -> None:
        with self._lock:
            if self.index is not None and self.index.unsaved:
                self._save(self.index)

    def _load(self, latest: int) -> VectorIndex | None:
        path = self.path
        if path is None or not path.exists():
            return None
        loaded = self.index_type.load(path, hnsw_threshold=self.hnsw_threshold)
        if loaded is None:
            return None
        index, meta = loaded
        fits = (
            meta.get("kb_id") == self.store.kb_id
            and meta.get("model") == self.embedder.name
            and index.dim == self.embedder.dim
            and index.synced <= latest
            and self._anchor_holds(index)
        )
        if not fits:
            return None
        index.configure(hnsw_threshold=self.hnsw_threshold)
        return index

    def _anchor_holds(self, index: VectorIndex) -> bool:
        """Whether the experiment the index last caught up with is still in the database,
        at the same seq and not older: a copy restored from a backup and written to since
        shares the file's identity and may even reach the same text_version, but not the
        random experiment ids of what was written after the copy."""
        if index.synced == 0:
            return index.n_live == 0
        if index.anchor is None:
            return False
        seq, exp_id = index.anchor
        row = self.store.read(
            lambda db: db.conn.execute(
                "SELECT seq, text_version FROM experiments WHERE id = ?", [exp_id]
            ).fetchone()
        )
        return row is not None and row[0] == seq and row[1] >= index.synced

    def _save(self, index: VectorIndex) -> None:
        path = self.path
        if path is None:
            index.unsaved = 0
            return
        # The index is only a cache of SQLite: failing to save it costs a rebuild later.
        with contextlib.suppress(OSError):
            index.save(path, {"kb_id": self.store.kb_id, "model": self.embedder.name})

    def _catch_up(self, index: VectorIndex, chunk: int = 20_000) -> None:
        """Add every experiment whose text changed after ``index.synced``, embedding the ones
        that have no vector from this embedder yet (e.g. recorded with another embedder)."""
        model = self.embedder.name
        while True:
            rows = self.store.read(
                lambda db: list(db.query(_CATCH_UP_SQL, [model, index.synced, chunk]))
            )
            if not rows:
                return
            missing = [
                i
                for i, row in enumerate(rows)
                if row["vector_version"] != row["text_version"] or row["vector"] is None
            ]
            partial = bool(missing) and not self.wait_for_vectors
            if partial:
                # The worker embeds the rest: take what is embedded, up to the first gap
                # (the index stays in text_version order), and leave the rest for later.
                rows, missing = rows[: missing[0]], []
                if not rows:
                    return
            vectors = np.zeros((len(rows), self.embedder.dim), dtype=np.float32)
            gaps = set(missing)
            for i, row in enumerate(rows):
                if i not in gaps:
                    vectors[i] = np.frombuffer(row["vector"], dtype=np.float32)
            if missing:
                vectors[missing] = self.embed([text_of(rows[i]) for i in missing])
                data = [
                    (rows[i]["seq"], model, rows[i]["text_version"], vectors[i].tobytes())
                    for i in missing
                ]
                self._write_vectors(data)
            index.upsert(
                PointBatch(
                    seqs=np.array([r["seq"] for r in rows], dtype=np.int64),
                    vectors=vectors,
                    lines=[r["line"] for r in rows],
                    started=np.array([r["started"] for r in rows], dtype=np.float64),
                )
            )
            index.synced = int(rows[-1]["text_version"])
            index.anchor = (int(rows[-1]["seq"]), str(rows[-1]["id"]))
            if partial:
                return

    def _write_vectors(self, data: list[tuple[int, str, int, bytes]]) -> None:
        self.store.write(lambda db: db.conn.executemany(_UPSERT_VECTOR_SQL, data))

    def store_vector(self, db: Any, seq: int, text_version: int, vector: np.ndarray) -> None:
        """Write one experiment's vector inside the caller's transaction."""
        db.conn.execute(
            _UPSERT_VECTOR_SQL, [seq, self.embedder.name, text_version, vector.tobytes()]
        )
