"""The KnowledgeBase: records in SQLite, meaning in a vector index (FAISS or ChronosVector),
analytics and reports on top."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from soma.errors import KnowledgeBaseError, SomaError, ValidationError
from soma.knowledge import _analytics, _journal, _temporal
from soma.knowledge._backends import resolve_backend
from soma.knowledge._embed import Embedder, resolve_embedder
from soma.knowledge._embed_worker import EmbeddingWorker
from soma.knowledge._index_base import TimeWindow, VectorIndex
from soma.knowledge._leases import reap, reap_one
from soma.knowledge._records import (
    LINE_STATUSES,
    ChangePoint,
    Experiment,
    JournalEntry,
    PromisingLine,
    Report,
    ResearchLine,
    SearchHit,
    TrajectoryPoint,
    Trend,
    check_direction,
    check_name,
)
from soma.knowledge._rows import experiment_from_row, filter_sql, line_from_row, parse_time
from soma.knowledge._search import SemanticIndex, SqlFilter, text_of
from soma.knowledge._store import Store
from soma.knowledge._temporal import HypothesisTrajectory, Novelty
from soma.knowledge._writes import (
    FROZEN_FIELDS,
    UnknownLineError,
    coerce,
    insert_experiments,
    insert_line,
    merged,
    update_experiment,
    update_line_row,
    with_line_defaults,
)

__all__ = ["KnowledgeBase"]

_ORDERS = {"started": "started ASC, seq ASC", "-started": "started DESC, seq DESC"}


def _window(since: datetime | str | None, until: datetime | str | None) -> TimeWindow | None:
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is None and end is None:
        return None
    return TimeWindow(
        start=None if start is None else start.timestamp(),
        end=None if end is None else end.timestamp(),
    )


def _positive(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, f"expected a positive integer, got {value!r}")
    return value


class KnowledgeBase:
    """Every experiment remembered, searchable by meaning, analysed per research line.

    ``path`` is the SQLite file (parent folders are created; ``":memory:"`` keeps everything
    in this process). ``embedder`` is ``"default"`` (all-MiniLM-L6-v2, offline, loaded on the
    first text to embed), ``"hashing"``, or any :class:`~soma.knowledge.Embedder`. Several
    processes and threads may use one file at once; a write that finds the file locked waits
    and retries for up to ``lock_timeout_s`` before a KnowledgeBaseError.

    ``backend`` picks the vector index: ``"faiss"`` (the default; exact up to ``hnsw_threshold``
    experiments, HNSW beyond) or ``"chronos"`` (ChronosVector's temporal HNSW, Python 3.12 and
    the ``chronos`` extra: time windows are searched inside the index, and a line's path
    through hypothesis space is read from it). Both keep the records in SQLite and rebuild
    the index from there when it is missing, stale or from another copy of the database.

    >>> from soma.knowledge import HashingEmbedder
    >>> kb = KnowledgeBase(":memory:", embedder=HashingEmbedder())
    >>> kb.create_line("digits", metric="accuracy", direction="maximize").direction
    'maximize'
    >>> exp_id = kb.record(Experiment(name="baseline", line="digits", metrics={"accuracy": 0.9}))
    >>> kb.best("digits").id == exp_id
    True
    """

    def __init__(
        self,
        path: str | Path,
        embedder: str | Embedder = "default",
        *,
        hnsw_threshold: int = 10_000,
        lock_timeout_s: float = 120.0,
        backend: str | None = None,
    ) -> None:
        _positive(hnsw_threshold, "hnsw_threshold")
        backend, index_type = resolve_backend(backend)
        if not lock_timeout_s > 0:
            raise ValidationError("lock_timeout_s", f"expected > 0, got {lock_timeout_s!r}")
        self._embedder = resolve_embedder(embedder)
        self._store = Store(path, lock_deadline_s=lock_timeout_s)
        self._semantic = SemanticIndex(
            self._store, self._embedder, hnsw_threshold=hnsw_threshold, index_type=index_type
        )
        self._backend = backend
        self._closed = False
        self._worker: EmbeddingWorker | None = None
        # Running records whose owning process is gone are closed as interrupted (_leases).
        with contextlib.suppress(SomaError):
            reap(self)

    # -- basics --------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def backend(self) -> str:
        """``"faiss"`` or ``"chronos"``: the kind of vector index beside the records."""
        return self._backend

    @property
    def index_path(self) -> Path | None:
        """Where the vector index for this embedder is saved (None for an in-memory KB)."""
        return self._semantic.path

    @property
    def _index(self) -> VectorIndex | None:
        return self._semantic.index

    def close(self) -> None:
        """Save the vector index if it changed, and close the database. Idempotent."""
        if self._closed:
            return
        self.stop_background_embedding()
        self._semantic.close()
        self._store.close()
        self._closed = True

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"KnowledgeBase({str(self.path)!r}, embedder={self._embedder!r}, "
            f"backend={self._backend!r})"
        )

    # -- research lines ------------------------------------------------------------------------
    def create_line(
        self, name: str, *, metric: str, direction: str, description: str = ""
    ) -> ResearchLine:
        """Create a research line; its metric's direction is declared here, never guessed."""
        line = ResearchLine(
            name=check_name(name, "name"),
            metric=check_name(metric, "metric"),
            direction=check_direction(direction),  # type: ignore[arg-type]
            description=description or "",
        )
        self._store.write(lambda db: insert_line(db, line))
        return line

    def ensure_line(
        self, name: str, *, metric: str, direction: str, description: str = ""
    ) -> ResearchLine:
        """The line ``name``, created if missing; an existing one must match metric/direction."""
        check_direction(direction)
        try:
            return self.create_line(
                name, metric=metric, direction=direction, description=description
            )
        except KnowledgeBaseError:
            existing = self.get_line(name)
        for field, wanted in (("metric", metric), ("direction", direction)):
            if getattr(existing, field) != wanted:
                raise ValidationError(
                    field,
                    f"research line {name!r} exists with {field} {getattr(existing, field)!r}, "
                    f"not {wanted!r}",
                )
        return existing

    def get_line(self, name: str) -> ResearchLine:
        """The research line ``name``; a KnowledgeBaseError naming it if there is none."""
        rows = self._store.read(
            lambda db: list(db.query("SELECT * FROM lines WHERE name = ?", [name]))
        )
        if not rows:
            raise UnknownLineError(name, [ln.name for ln in self.lines()])
        return line_from_row(rows[0])

    def update_line(
        self, name: str, *, description: str | None = None, status: str | None = None
    ) -> ResearchLine:
        """Change a line's description or status (``"active"`` / ``"archived"``).

        Its metric and direction cannot change: every analysis of its experiments reads them.
        An archived line keeps its experiments and analyses but is never a promising line.
        """
        if status is not None and status not in LINE_STATUSES:
            raise ValidationError(
                "status", f"expected one of {', '.join(LINE_STATUSES)}, got {status!r}"
            )
        if description is not None and not isinstance(description, str):
            raise ValidationError("description", f"expected a string, got {description!r}")
        return self._store.write(lambda db: update_line_row(db, name, description, status))

    def lines(self) -> list[ResearchLine]:
        """Every research line, by name."""
        rows = self._store.read(
            lambda db: list(db.query("SELECT * FROM lines ORDER BY name COLLATE NOCASE, name"))
        )
        return [line_from_row(r) for r in rows]

    def _lines_by_name(self) -> dict[str, ResearchLine]:
        return {line.name: line for line in self.lines()}

    # -- recording -----------------------------------------------------------------------------
    #: Whether :meth:`record` embeds the experiment's text as it writes. A writer on a hot
    #: path (the agent's loop) sets it False: the next semantic query then embeds every row
    #: still missing a vector in one batch (see :meth:`record_many`'s ``embed``).
    embed_on_record: bool = True

    def embed_in_background(self) -> EmbeddingWorker:
        """Embed on a background thread from now on: :meth:`record` stores no vector and
        wakes the worker, which loads the model once and embeds the backlog in batches. A
        semantic query then never waits for embedding; it searches what has a vector, and
        :meth:`not_yet_searchable` says how many records it could not see. Stopped by
        :meth:`stop_background_embedding` or :meth:`close`; idempotent."""
        if self._worker is None or not self._worker.alive:
            self._worker = EmbeddingWorker(self._semantic)
            self._worker.start()
        self.embed_on_record = False
        return self._worker

    def stop_background_embedding(self) -> None:
        """Stop the worker (after its current batch); queries embed for themselves again, so
        what it had not embedded yet is embedded by the next query."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def search_ready(self) -> bool:
        """False while the background worker is still loading the embedding model: a
        semantic query now would wait for it (seconds), a caller on a hot path may skip it."""
        return self._worker is None or self._worker.ready.is_set()

    def not_yet_searchable(self) -> int:
        """How many experiments the last semantic query could not find because they were
        still waiting for the background worker's embedding (0 without a worker)."""
        return self._semantic.backlog() if self._worker is not None else 0

    def record(self, experiment: Experiment | Mapping[str, Any]) -> str:
        """Store an experiment (and its embedding, unless :attr:`embed_on_record` is off);
        return its id.

        Idempotent by ``idempotency_key``: recording a key that is already stored writes nothing
        and returns the first experiment's id.
        """
        exp_id = self.record_many([experiment], embed=self.embed_on_record)[0]
        if self._worker is not None:
            self._worker.wake()
        return exp_id

    def record_many(
        self, experiments: Iterable[Experiment | Mapping[str, Any]], *, embed: bool = True
    ) -> list[str]:
        """Record several experiments in one transaction, embedding their texts in one batch.

        ``embed=False`` stores no vectors: the first semantic query embeds them (as it does
        for rows another embedder wrote), so a writer need not wait for a model to load."""
        lines = self._lines_by_name()
        exps = [with_line_defaults(coerce(e), lines) for e in experiments]
        if not exps:
            return []
        keys = sorted({e.idempotency_key for e in exps if e.idempotency_key})
        stored = self._ids_for_keys(keys) if keys else {}
        # Embed only what will be written: not keys already stored, nor repeats in the batch.
        to_embed: dict[str, Experiment] = {}
        seen = set(stored)
        for exp in exps:
            if exp.idempotency_key not in seen:
                to_embed[str(exp.id)] = exp
                if exp.idempotency_key:
                    seen.add(exp.idempotency_key)
        texts = [text_of(e) for e in to_embed.values()] if embed else []
        vectors = self._semantic.embed(texts)
        row_of = {exp_id: i for i, exp_id in enumerate(to_embed)}

        def vector_of(exp: Experiment) -> np.ndarray | None:
            if not embed:
                return None
            at = row_of.get(str(exp.id))
            # Not embedded beforehand only if another process stored its key in between.
            return vectors[at] if at is not None else self._semantic.embed([text_of(exp)])[0]

        return self._store.write(lambda db: insert_experiments(db, exps, vector_of, self._semantic))

    def _ids_for_keys(self, keys: Sequence[str]) -> dict[str, str]:
        marks = ", ".join("?" for _ in keys)
        sql = f"SELECT idempotency_key, id FROM experiments WHERE idempotency_key IN ({marks})"
        return dict(self._store.read(lambda db: db.conn.execute(sql, list(keys)).fetchall()))

    def update(self, id: str, **fields: Any) -> Experiment:
        """Change fields of a stored experiment (status, metrics, finished, verdict, notes, ...).

        ``id`` and ``idempotency_key`` cannot change. If the searchable text changes (name,
        hypothesis, pipeline summary, notes, tags) the experiment is embedded again (later,
        by the next query or the background worker, when :attr:`embed_on_record` is off).
        """
        for field in fields:
            if field not in Experiment.model_fields:
                known = ", ".join(f for f in Experiment.model_fields if f not in FROZEN_FIELDS)
                raise ValidationError(field, f"unknown experiment field; known: {known}")
            if field in FROZEN_FIELDS:
                raise ValidationError(field, "cannot be changed once recorded")
        lines = self._lines_by_name()
        current = self.get(id)
        text = text_of(merged(current, fields, lines))
        # Embed outside the write lock; the transaction re-checks against what is stored then.
        embed = self.embed_on_record
        changed = text != text_of(current)
        precomputed = (text, self._semantic.embed([text])[0]) if changed and embed else None
        updated = self._store.write(
            lambda db: update_experiment(db, id, fields, lines, self._semantic, precomputed, embed)
        )
        if changed and self._worker is not None:
            self._worker.wake()
        return updated

    # -- reading -------------------------------------------------------------------------------
    def get(self, id: str) -> Experiment:
        """The experiment ``id``; a KnowledgeBaseError naming it if there is none."""
        rows = self._store.read(
            lambda db: list(db.query("SELECT * FROM experiments WHERE id = ?", [id]))
        )
        if not rows:
            raise KnowledgeBaseError(f"no experiment with id {id!r}")
        return reap_one(self, experiment_from_row(rows[0]))

    def experiments(
        self,
        *,
        line: str | None = None,
        status: str | Sequence[str] | None = None,
        origin: str | Sequence[str] | None = None,
        run_id: str | None = None,
        limit: int | None = None,
        order: str = "started",
    ) -> list[Experiment]:
        """Experiments matching the filters; ``order`` is ``"started"`` (oldest first) or
        ``"-started"`` (newest first)."""
        if line is not None:
            self.get_line(line)
        if order not in _ORDERS:
            raise ValidationError("order", f"expected one of {', '.join(_ORDERS)}, got {order!r}")
        clause, params = filter_sql(line=line, status=status, origin=origin, run_id=run_id)
        sql = f"SELECT * FROM experiments WHERE {clause} ORDER BY {_ORDERS[order]}"
        if limit is not None:
            sql += f" LIMIT {_positive(limit, 'limit')}"
        rows = self._store.read(lambda db: list(db.query(sql, params)))
        return [reap_one(self, experiment_from_row(r)) for r in rows]

    def count(self, *, line: str | None = None, status: str | Sequence[str] | None = None) -> int:
        """How many experiments match (all of them by default)."""
        if line is not None:
            self.get_line(line)
        clause, params = filter_sql(line=line, status=status)
        sql = f"SELECT count(*) FROM experiments WHERE {clause}"
        return int(self._store.read(lambda db: db.conn.execute(sql, params).fetchone()[0]))

    # -- semantic search -----------------------------------------------------------------------
    def query(
        self,
        text: str | None = None,
        *,
        line: str | None = None,
        tags: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        origin: str | Sequence[str] | None = None,
        where: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        verdict: str | Sequence[str] | None = None,
        k: int = 10,
    ) -> list[SearchHit]:
        """Experiments by meaning and filters, best first, each with its cosine ``score``.

        Without ``text`` (or with a blank one) only the filters apply and the newest come
        first, with ``score`` None. ``tags`` must all be present; ``where`` is a metric
        condition such as ``"accuracy > 0.9 and loss <= 0.3"``; ``since`` / ``until`` bound the
        start time (datetime, ISO 8601, or an age like ``"7d"``); ``verdict`` keeps experiments
        judged ``"supported"``, ``"refuted"`` or ``"inconclusive"``. On the ``chronos`` backend a
        semantic query's time window is searched inside the index; on ``faiss`` it is checked
        on the nearest neighbours afterwards.
        """
        _positive(k, "k")
        if line is not None:
            self.get_line(line)
        if where is not None:
            self._check_where_names(where)
        semantic = text is not None and bool(text.strip())
        window = None
        if semantic and self._semantic.index_type.pushes_time_window:
            window = _window(since, until)
            since = until = None  # the index applies them
        clause, params = filter_sql(
            line=line,
            tags=tags,
            status=status,
            origin=origin,
            where=where,
            since=since,
            until=until,
            verdict=verdict,
        )
        if text is None or not semantic:
            sql = f"SELECT * FROM experiments WHERE {clause} ORDER BY started DESC, seq DESC"
            rows = self._store.read(lambda db: list(db.query(f"{sql} LIMIT {k}", params)))
            return [SearchHit(experiment=reap_one(self, experiment_from_row(r))) for r in rows]
        query_vector = self._semantic.embed_query(text)
        where_filter = None if clause == "1" else SqlFilter(self._store, clause, params)
        pairs = self._semantic.search(query_vector, k, where_filter, window)
        if not pairs:
            return []
        marks = ", ".join("?" for _ in pairs)
        sql = f"SELECT * FROM experiments WHERE seq IN ({marks})"
        rows = self._store.read(lambda db: list(db.query(sql, [seq for seq, _ in pairs])))
        by_seq = {r["seq"]: reap_one(self, experiment_from_row(r)) for r in rows}
        return [
            SearchHit(experiment=by_seq[seq], score=score) for seq, score in pairs if seq in by_seq
        ]

    def _check_where_names(self, where: str) -> None:
        """A name that no experiment records (``acc > 0.9``) would silently match nothing:
        refuse it, naming the metrics (or params) that do exist."""
        import difflib

        from soma.knowledge._where import parse_where

        for source, name in parse_where(where).names():
            sql = f"SELECT DISTINCT j.key FROM experiments, json_each(experiments.{source}) j"
            known = {
                r[0] for r in self._store.read(lambda db, q=sql: db.conn.execute(q).fetchall())
            }
            if source == "metrics":
                known |= {ln.metric for ln in self.lines()}
            if name in known or not known:
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
            by_case = [k for k in known if k.lower() == name.lower()]
            hint = f"; did you mean {(by_case or close)[0]!r}?" if by_case or close else ""
            kind = "metric" if source == "metrics" else "param"
            listing = ", ".join(sorted(known)[:30])
            raise ValidationError(
                "where", f"no experiment records a {kind} {name!r}{hint} ({kind}s: {listing})"
            )

    def novelty(
        self,
        text: str,
        *,
        line: str | None = None,
        within: timedelta | str | None = "30d",
        verdicts: Sequence[str] = ("refuted",),
        k: int = 5,
    ) -> Novelty:
        """How new the hypothesis ``text`` is against those already tried and refuted recently.

        Compares with the experiments (of ``line``, if given) started within ``within`` (an age
        like ``"30d"``, a timedelta, or None for all time) whose verdict is one of ``verdicts``
        (empty: any experiment); ``novelty`` is 1 minus the cosine similarity of the nearest.
        The agent uses it to stop circling back to ideas that already failed. On the chronos
        backend the time window is searched inside the index.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("text", f"expected a non-empty hypothesis, got {text!r}")
        if isinstance(within, timedelta):
            if within.total_seconds() <= 0:
                raise ValidationError("within", f"expected a positive duration, got {within!r}")
            within = datetime.now(UTC) - within
        start = parse_time(within, "within")
        picked = list(verdicts)
        hits = self.query(text, line=line, since=start, verdict=picked or None, k=k)
        similarity = None if not hits or hits[0].score is None else float(hits[0].score)
        novelty = 1.0 if similarity is None else min(1.0, max(0.0, 1.0 - similarity))
        return Novelty(
            text=text,
            line=line,
            novelty=novelty,
            similarity=similarity,
            nearest=hits,
            window_start=start,
            verdicts=picked,
        )

    def save_index(self) -> Path | None:
        """Bring the vector index up to date and save it now; returns its path."""
        return self._semantic.save()

    # -- analytics -----------------------------------------------------------------------------
    def trajectory(
        self, line: str, metric: str | None = None, *, direction: str | None = None
    ) -> list[TrajectoryPoint]:
        """The line's metric over time (successful experiments), with the best value so far.

        Another metric than the line's needs its ``direction``."""
        ln = self.get_line(line)
        metric, direction = _analytics.resolve_metric(ln, metric, direction)
        return _analytics.trajectory(self.experiments(line=line), metric, direction)

    def trend(self, line: str) -> Trend:
        """Improving / Plateaued / Declining / Unknown (rule: :func:`classify_trend`)."""
        points = self.trajectory(line)
        return _analytics.classify_trend([p.value for p in points], self.get_line(line).direction)

    def change_points(
        self, line: str, metric: str | None = None, *, direction: str | None = None
    ) -> list[ChangePoint]:
        """Level shifts in the line's metric, each explained by what changed around it."""
        ln = self.get_line(line)
        metric, direction = _analytics.resolve_metric(ln, metric, direction)
        return _analytics.change_points(self.experiments(line=line), metric, direction)

    def hypothesis_trajectory(
        self,
        line: str,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> HypothesisTrajectory:
        """The line's path through hypothesis space (its experiments' embeddings by start time).

        Says how far each experiment moved from the previous and from the first, where the
        line's focus changed direction (each change explained by the experiments on each side
        and the metric before and after) and, beside them, the metric change points. On the
        chronos backend the vectors are the line's entity trajectory in the temporal index;
        ``since`` / ``until`` limit the start times.
        """
        ln = self.get_line(line)
        clause, params = filter_sql(line=line, since=since, until=until)
        sql = f"SELECT * FROM experiments WHERE {clause} ORDER BY started ASC, seq ASC"
        rows = self._store.read(lambda db: list(db.query(sql, params)))
        exps = [experiment_from_row(r) for r in rows]
        vectors, source = self._semantic.line_vectors(
            line, [int(r["seq"]) for r in rows], _window(since, until)
        )
        return _temporal.hypothesis_trajectory(
            ln.name,
            ln.metric,
            exps,
            vectors,
            source=source,
            metric_change_points=_analytics.change_points(exps, ln.metric, ln.direction),
        )

    def best(self, line: str) -> Experiment | None:
        """The line's best successful experiment by its metric and direction (None if none)."""
        ln = self.get_line(line)
        return _analytics.best_experiment(self.experiments(line=line), ln.metric, ln.direction)

    def promising_lines(
        self, k: int = 5, *, recent: timedelta = timedelta(days=7)
    ) -> list[PromisingLine]:
        """Lines that are improving, or close to the best comparable line and recently active."""
        _positive(k, "k")
        by_line: dict[str, list[Experiment]] = {}
        for exp in self.experiments():
            if exp.line is not None:
                by_line.setdefault(exp.line, []).append(exp)
        pairs = [(ln, by_line.get(ln.name, [])) for ln in self.lines()]
        return _analytics.promising(pairs, k=k, recent=recent)

    def generate_report(self, line: str, out_dir: str | Path | None = None) -> Report:
        """Write a Markdown report (and its trajectory PNG) for ``line`` into ``out_dir``.

        ``out_dir`` defaults to ``reports/`` beside the knowledge-base file (in a project,
        ``.soma/reports``, where ``soma kb report`` writes too); an in-memory knowledge base
        needs one.
        """
        from soma.knowledge._line_report import write_report

        ln = self.get_line(line)
        if out_dir is None:
            if self._store.in_memory:
                raise ValidationError(
                    "out_dir", "an in-memory knowledge base has no folder: pass out_dir"
                )
            out_dir = self.path.parent / "reports"
        return write_report(ln, self.experiments(line=line), Path(out_dir))

    # -- agent journal -------------------------------------------------------------------------
    def journal_append(
        self, run_id: str, iteration: int, kind: str, payload: Mapping[str, Any] | None = None
    ) -> int:
        """Append an entry to a run's journal; returns its id (increasing, never reused)."""
        return _journal.append(self._store, run_id, iteration, kind, payload)

    def journal(
        self,
        run_id: str,
        *,
        after_id: int = 0,
        kinds: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """A run's entries with id > ``after_id``, oldest first (optionally only some kinds)."""
        return _journal.entries(self._store, run_id, after_id=after_id, kinds=kinds, limit=limit)

    def journal_runs(self) -> list[str]:
        """Every run id with a journal, in the order the runs started."""
        return _journal.run_ids(self._store)
