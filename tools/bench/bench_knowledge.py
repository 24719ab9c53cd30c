"""Knowledge base: insert throughput and query latency at 1k, 10k and 100k experiments.

For each size the script records synthetic but varied experiments (5 research lines, names,
hypotheses, pipelines, tags, params, metrics) through ``KnowledgeBase.record_many`` in batches
of 500 (one embedding batch and one transaction each), then runs semantic queries.

* Embedding is reported apart. Sizes marked "real" embed every record with all-MiniLM-L6-v2.
  Sizes marked "synthetic" embed a sample of 1,000 records with the real model and give every
  other record a precomputed vector (a sample vector plus noise, renormalised: clustered like
  real data), so 100k records do not spend minutes in the model; their insert rate is
  storage only (the SQLite row and its vector; the FAISS index catches up at the next query,
  timed apart as "first query: index build s").
* Query latency excludes the query's own embedding: the query texts are embedded beforehand
  (the single-query embedding time is reported apart), then ``kb.query(text, k=10)`` runs end
  to end — index sync check, FAISS search, SQLite fetch, pydantic records.
* Peers, side by side on the same vectors: exact numpy brute force (``X @ q`` + top-10) and
  the raw FAISS index Soma holds (search only, no records), both on one thread like Soma's
  query path. ``recall@10`` compares Soma's results with the exact top 10. Filtered queries
  add ``line=`` (a fifth of the records) and ``where="accuracy > 0.5"`` (half of those).

``--backends`` compares the two vector indexes side by side in one run, FAISS and
ChronosVector (``KnowledgeBase(backend=...)``, see :func:`bench_backends`); chronos-vector has a
wheel for Python 3.12 only, so run it in the lean 3.12 environment of ``.ci/kb_py312.sh``.

Usage::

    .venv/bin/python tools/bench/bench_knowledge.py          # 1k real; 10k, 100k synthetic
    .venv/bin/python tools/bench/bench_knowledge.py --quick  # 1k real, 10k synthetic
    .venv/bin/python tools/bench/bench_knowledge.py --full   # 10k real too; 600 queries a size
    .venv312/bin/python tools/bench/bench_knowledge.py --backends [--sizes 10000 100000]
    # the same on MiniLM vectors: embed the sample on 3.11, compare on 3.12
    .venv/bin/python tools/bench/bench_knowledge.py --save-sample /tmp/kb-sample.npz
    .venv312/bin/python tools/bench/bench_knowledge.py --backends --sample-vectors \
        /tmp/kb-sample.npz
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from soma.knowledge import Experiment, KnowledgeBase, MiniLMEmbedder
from soma.knowledge._vectors import EF_SEARCH

LINES = ("digits-cnn", "digits-linear", "wine-trees", "tabular-boost", "text-clf")
SUBJECTS = (
    "learning rate",
    "batch size",
    "weight decay",
    "dropout",
    "label smoothing",
    "the scaler",
    "PCA components",
    "tree depth",
    "number of estimators",
    "data augmentation",
    "the optimizer",
    "warmup schedule",
    "feature selection",
    "class weights",
    "early stopping",
    "the kernel",
)
CHANGES = (
    "doubled",
    "halved",
    "removed",
    "added",
    "tuned",
    "switched",
    "increased",
    "decreased",
)
OUTCOMES = (
    "training diverged",
    "validation accuracy improved",
    "no measurable effect",
    "overfitting got worse",
    "loss plateaued early",
    "converged twice as fast",
    "the model underfit",
    "results became noisier across seeds",
)
MODELS = ("LogReg", "SVC", "RandomForest", "GradientBoosting", "KNN", "MLP", "SGD")


def make_experiments(n: int, seed: int = 0) -> list[Experiment]:
    rnd = random.Random(seed)
    out = []
    for j in range(n):
        subject, change, outcome = rnd.choice(SUBJECTS), rnd.choice(CHANGES), rnd.choice(OUTCOMES)
        model = rnd.choice(MODELS)
        out.append(
            Experiment(
                name=f"rec-{j:06d}",
                line=LINES[j % len(LINES)],
                hypothesis=f"{change} {subject} with {model}; {outcome}",
                pipeline_summary=f"StandardScale >> {model}",
                params={"lr": 10 ** rnd.uniform(-4, -1), "depth": rnd.randint(2, 12)},
                metrics={"accuracy": rnd.random(), "loss": rnd.uniform(0.05, 2.0)},
                tags=[subject.split()[0], model.lower()],
                origin=rnd.choice(("python", "agent", "study")),
            )
        )
    return out


@dataclass
class BenchEmbedder:
    """The real model, or a precomputed vector for records named ``rec-NNNNNN``; timed."""

    real: MiniLMEmbedder
    table: np.ndarray | None = None
    seconds: float = 0.0
    texts: int = 0
    name: str = field(init=False)
    dim: int = field(init=False)

    def __post_init__(self) -> None:
        self.name, self.dim = self.real.name, self.real.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        if self.table is not None and all(t.startswith("rec-") for t in texts):
            rows = [int(t[4:10]) for t in texts]
            vectors = self.table[rows]
        else:
            vectors = self.real.embed(texts)
        self.seconds += time.perf_counter() - t0
        self.texts += len(texts)
        return vectors


def synthetic_table(sample: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = sample[np.arange(n) % len(sample)]
    noisy = base + rng.normal(0.0, 0.05, base.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.ascontiguousarray(noisy, dtype=np.float32)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_size(n: int, real: bool, minilm: MiniLMEmbedder, queries: int, progress) -> dict:
    from soma.knowledge._embed import experiment_text

    exps = make_experiments(n)
    texts = [
        experiment_text(
            name=e.name,
            hypothesis=e.hypothesis,
            pipeline_summary=e.pipeline_summary,
            notes=e.notes,
            tags=e.tags,
        )
        for e in exps
    ]
    embedder = BenchEmbedder(minilm)
    sample_s_per_rec = None
    if not real:
        t0 = time.perf_counter()
        sample = minilm.embed(texts[:1000])
        sample_s_per_rec = (time.perf_counter() - t0) / 1000
        embedder.table = synthetic_table(sample, n)
    # Queries: paraphrase-like texts, embedded beforehand so latency excludes embedding.
    rnd = random.Random(7)
    query_texts = [
        f"what happened when we {rnd.choice(CHANGES)} {rnd.choice(SUBJECTS)}"
        for _ in range(queries)
    ]
    query_vectors = minilm.embed(query_texts)
    single = []
    for text in query_texts[:30]:
        t0 = time.perf_counter()
        minilm.embed([text])
        single.append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kb.sqlite"
        kb = KnowledgeBase(path, embedder=embedder)
        for line in LINES:
            kb.create_line(line, metric="accuracy", direction="maximize")
        task = progress.add_task(f"insert {n:,}", total=n)
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            kb.record_many(exps[start : start + 500])
            progress.advance(task, min(500, n - start))
        insert_s = time.perf_counter() - t0
        embed_s = embedder.seconds
        progress.remove_task(task)

        # Query texts map to precomputed vectors from here on.
        lookup = {t: v for t, v in zip(query_texts, query_vectors, strict=True)}
        real_embed = embedder.embed

        def cached_embed(batch: Sequence[str]) -> np.ndarray:
            if all(t in lookup for t in batch):
                return np.stack([lookup[t] for t in batch])
            return real_embed(batch)

        embedder.embed = cached_embed  # type: ignore[method-assign]

        t0 = time.perf_counter()
        kb.query(query_texts[0], k=10)  # builds the index from SQLite (catch-up)
        build_s = time.perf_counter() - t0
        index = kb._index
        assert index is not None
        kind = index.kind

        latencies, filtered, recalls = [], [], []
        all_vectors = index.reconstruct(np.arange(index.index.ntotal, dtype=np.int64))
        labels = index.labels
        for text, qv in zip(query_texts, query_vectors, strict=True):
            t0 = time.perf_counter()
            hits = kb.query(text, k=10)
            latencies.append(time.perf_counter() - t0)
            exact = labels[np.argsort(-(all_vectors @ qv))[:10]]
            soma_ids = {h.experiment.id for h in hits}
            exact_ids = {f"rec-{s - 1:06d}" for s in exact}  # seq = insertion order, from 1
            recalls.append(
                len({h.experiment.name for h in hits} & exact_ids) / 10 if soma_ids else 0.0
            )
        for text in query_texts:
            t0 = time.perf_counter()
            kb.query(text, k=10, line=LINES[2], where="accuracy > 0.5")
            filtered.append(time.perf_counter() - t0)

        # Peers on one thread, like Soma's query path (threads only add spin-waits here).
        brute, raw = [], []
        if kind == "hnsw":
            index.index.hnsw.efSearch = EF_SEARCH  # the breadth Soma's unfiltered queries use
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        with threadpool_limits(1):
            for qv in query_vectors:
                t0 = time.perf_counter()
                scores = all_vectors @ qv
                top = np.argpartition(-scores, 10)[:10]
                _ = top[np.argsort(-scores[top])]
                brute.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                index.index.search(qv.reshape(1, -1), 10)
                raw.append(time.perf_counter() - t0)
        faiss.omp_set_num_threads(previous)
        kb.close()

        t0 = time.perf_counter()
        reopened = KnowledgeBase(path, embedder=embedder)
        reopened.query(query_texts[1], k=10)
        reopen_s = time.perf_counter() - t0
        reopened.close()
        size_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6

    per_rec_embed = embed_s / n if real else sample_s_per_rec
    return {
        "n": n,
        "vectors": "real" if real else "synthetic",
        "embed_ms_per_rec": 1000 * (per_rec_embed or 0.0),
        "insert_total_rps": n / insert_s,
        "insert_storage_rps": n / max(insert_s - embed_s, 1e-9),
        "build_s": build_s,
        "kind": kind,
        "q_p50": 1000 * pct(latencies, 50),
        "q_p95": 1000 * pct(latencies, 95),
        "f_p50": 1000 * pct(filtered, 50),
        "f_p95": 1000 * pct(filtered, 95),
        "brute_p50": 1000 * pct(brute, 50),
        "raw_p50": 1000 * pct(raw, 50),
        "recall": statistics.mean(recalls),
        "qembed_ms": 1000 * statistics.median(single),
        "reopen_s": reopen_s,
        "disk_mb": size_mb,
    }


@dataclass
class TableEmbedder:
    """Precomputed vectors for records named ``rec-NNNNNN`` and for the query texts."""

    table: np.ndarray
    queries: dict[str, np.ndarray]
    name: str = "bench-table"
    dim: int = field(init=False)

    def __post_init__(self) -> None:
        self.dim = int(self.table.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if all(t in self.queries for t in texts):
            return np.stack([self.queries[t] for t in texts])
        return self.table[[int(t[4:10]) for t in texts]]


def _sample_vectors(texts: Sequence[str]) -> tuple[np.ndarray, str]:
    """Vectors of a 1,000-text sample: all-MiniLM-L6-v2 where it is installed, else the
    384-d hashing embedder (the lean Python 3.12 environment has no torch)."""
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is not None:
        return MiniLMEmbedder().embed(list(texts)), "all-MiniLM-L6-v2 sample + noise"
    from soma.knowledge import HashingEmbedder

    return HashingEmbedder(dim=384).embed(list(texts)), "hashing-384 sample + noise"


def _backend_run(backend: str, n: int, emb: TableEmbedder, exps: list, queries: list) -> dict:
    """Insert ``n`` records, build the index, then time queries on one backend."""
    from soma.knowledge import _chronos

    started = np.array([e.started.timestamp() for e in exps])
    # Windows of a tenth of the time span, placed at random; exact answers from numpy.
    rnd = np.random.default_rng(3)
    span = started[-1] - started[0]
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(Path(tmp) / "kb.sqlite", embedder=emb, backend=backend)
        for line in LINES:
            kb.create_line(line, metric="accuracy", direction="maximize")
        t0 = time.perf_counter()
        for start in range(0, n, 5_000):
            kb.record_many(exps[start : start + 5_000])
        rows_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        kb.query(queries[0], k=10)  # the index catches up from SQLite: one bulk load
        build_s = time.perf_counter() - t0
        kind = kb._index.kind  # type: ignore[union-attr]
        plain, windowed, recall, w_recall = [], [], [], []
        with threadpool_limits(1):
            for text in queries:
                qv = emb.queries[text]
                t0 = time.perf_counter()
                hits = kb.query(text, k=10)
                plain.append(time.perf_counter() - t0)
                exact = np.argpartition(-(emb.table[:n] @ qv), 10)[:10]
                got = {int(h.experiment.name[4:]) for h in hits}
                recall.append(len(got & set(exact.tolist())) / 10)
                low = started[0] + rnd.uniform(0, 0.9) * span
                high = low + 0.1 * span
                since, until = datetime.fromtimestamp(low, UTC), datetime.fromtimestamp(high, UTC)
                t0 = time.perf_counter()
                hits = kb.query(text, k=10, since=since, until=until)
                windowed.append(time.perf_counter() - t0)
                inside = np.flatnonzero((started >= low) & (started <= high))
                top = inside[np.argsort(-(emb.table[inside] @ qv))[:10]]
                got = {int(h.experiment.name[4:]) for h in hits}
                w_recall.append(len(got & set(top.tolist())) / min(10, len(top)))
        kb.close()
    return {
        "backend": backend,
        "n": n,
        "kind": kind,
        "rows_rps": n / rows_s,
        "index_rps": n / build_s,
        "total_rps": n / (rows_s + build_s),
        "q_p50": 1000 * pct(plain, 50),
        "q_p95": 1000 * pct(plain, 95),
        "recall": statistics.mean(recall),
        "w_p50": 1000 * pct(windowed, 50),
        "w_p95": 1000 * pct(windowed, 95),
        "w_recall": statistics.mean(w_recall),
        "bulk_ef": _chronos.BULK_EF_CONSTRUCTION if backend == "chronos" else None,
    }


def _backend_texts(n_max: int, queries: int) -> tuple[list[Experiment], list[str], list[str]]:
    """The records (one a minute from 2025-01-01), their 1,000-text sample and the queries:
    the same in every process, so a sample saved by one interpreter fits another."""
    from soma.knowledge._embed import experiment_text

    exps = make_experiments(n_max)
    t_start = datetime(2025, 1, 1, tzinfo=UTC)
    for j, e in enumerate(exps):  # one experiment a minute: windows select by start time
        e.started = t_start + timedelta(minutes=j)
    texts = [
        experiment_text(
            name=e.name,
            hypothesis=e.hypothesis,
            pipeline_summary=e.pipeline_summary,
            notes=e.notes,
            tags=e.tags,
        )
        for e in exps[:1000]
    ]
    rnd = random.Random(7)
    query_texts = [
        f"what happened when we {rnd.choice(CHANGES)} {rnd.choice(SUBJECTS)} #{i}"
        for i in range(queries)
    ]
    return exps, texts, query_texts


def save_sample(path: Path, queries: int) -> None:
    """Embed the backends comparison's 1,000-text sample and queries with all-MiniLM-L6-v2
    (on 3.11, where the model is installed) into ``path`` (.npz, with the texts), for
    ``--backends --sample-vectors path`` on the 3.12 interpreter that has chronos-vector."""
    _, texts, query_texts = _backend_texts(1000, queries)
    all_texts = texts + query_texts
    vectors = MiniLMEmbedder().embed(all_texts)
    np.savez(path, vectors=np.asarray(vectors, dtype=np.float32), texts=np.array(all_texts))
    print(f"{len(all_texts)} MiniLM vectors ({vectors.shape[1]}-d) saved to {path}")


def _load_sample(path: Path, texts: Sequence[str]) -> np.ndarray:
    data = np.load(path)
    if [str(t) for t in data["texts"]] != list(texts):
        raise SystemExit(
            f"{path} holds vectors of other texts (another --queries?); run --save-sample again"
        )
    return data["vectors"]


def bench_backends(sizes: Sequence[int], queries: int, sample_path: Path | None = None) -> None:
    """FAISS vs ChronosVector behind the same KnowledgeBase, alternating per size.

    Records are inserted in batches of 5,000 (``record_many``: SQLite rows and vectors), and
    the index is built by the first query (one bulk load from SQLite, as after a restart):
    both are reported, and their sum as the bulk insert rate. Queries are end to end
    (``kb.query``: sync check, index search, SQLite fetch, records), query embedding excluded;
    the time-windowed query asks for a random tenth of the time span (``since`` / ``until``):
    FAISS checks it in SQL on its nearest neighbours, Chronos inside the index. recall@10 is
    against numpy's exact top 10 (over the window for the windowed query).
    """
    from rich.console import Console
    from rich.table import Table

    from soma.knowledge._chronos import import_chronos

    import_chronos()  # say at once if this interpreter cannot run the comparison
    console = Console(width=max(160, Console().width))  # twelve columns
    console.print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    exps, texts, query_texts = _backend_texts(max(sizes), queries)
    if sample_path is not None:  # MiniLM vectors embedded by the 3.11 process
        sample = _load_sample(sample_path, texts + query_texts)
        source = "all-MiniLM-L6-v2 sample (saved on 3.11) + noise"
    else:
        sample, source = _sample_vectors(texts + query_texts)
    table = synthetic_table(sample[:1000], max(sizes))
    emb = TableEmbedder(table, dict(zip(query_texts, sample[1000:], strict=True)))
    results = []
    for n in sizes:
        for backend in ("faiss", "chronos"):
            console.print(f"{backend} at {n:,} ...")
            results.append(_backend_run(backend, n, emb, exps[:n], query_texts))
    t = Table(
        title=f"FAISS vs ChronosVector, k=10, {queries} queries, vectors: {source} (ms)",
        title_justify="left",
    )
    for col in (
        "records",
        "backend",
        "index",
        "rows rec/s",
        "index build rec/s",
        "bulk insert rec/s",
        "query p50",
        "query p95",
        "recall@10",
        "window p50",
        "window p95",
        "window recall@10",
    ):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(
            f"{r['n']:,}",
            r["backend"],
            r["kind"],
            f"{r['rows_rps']:,.0f}",
            f"{r['index_rps']:,.0f}",
            f"{r['total_rps']:,.0f}",
            f"{r['q_p50']:.2f}",
            f"{r['q_p95']:.2f}",
            f"{r['recall']:.3f}",
            f"{r['w_p50']:.2f}",
            f"{r['w_p95']:.2f}",
            f"{r['w_recall']:.3f}",
        )
    console.print(t)
    by = {(r["n"], r["backend"]): r for r in results}
    for n in sizes:
        f, c = by[(n, "faiss")], by[(n, "chronos")]
        console.print(
            f"{n:,}: chronos / faiss — query p50 {c['q_p50'] / f['q_p50']:.2f}x, window p50 "
            f"{c['w_p50'] / f['w_p50']:.2f}x, bulk insert {c['total_rps'] / f['total_rps']:.2f}x"
        )
    console.print(
        f"chronos bulk loads at ef_construction {results[-1]['bulk_ef'] or '-'}; "
        f"load average at the end {os.getloadavg()[0]:.1f}."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1k real, 10k synthetic")
    mode.add_argument("--full", action="store_true", help="10k real, 600 queries per size")
    mode.add_argument("--backends", action="store_true", help="FAISS vs ChronosVector")
    parser.add_argument("--queries", type=int, default=None, help="queries per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    mode.add_argument(
        "--save-sample", type=Path, metavar="NPZ", help="embed --backends' sample with MiniLM"
    )
    parser.add_argument(
        "--sample-vectors", type=Path, metavar="NPZ", help="--backends on a saved MiniLM sample"
    )
    args = parser.parse_args(argv)
    if args.save_sample:
        save_sample(args.save_sample, args.queries or 200)
        return
    if args.backends:
        bench_backends(args.sizes, args.queries or 200, args.sample_vectors)
        return

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    if args.quick:
        plan = [(1_000, True), (10_000, False)]
    elif args.full:
        plan = [(1_000, True), (10_000, True), (100_000, False)]
    else:
        plan = [(1_000, True), (10_000, False), (100_000, False)]
    queries = args.queries or (100 if args.quick else 600 if args.full else 200)
    console = Console()
    console.print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    minilm = MiniLMEmbedder()
    t0 = time.perf_counter()
    minilm.embed(["load the model"])
    console.print(f"model load: {time.perf_counter() - t0:.1f} s (once per process)")
    results = []
    with Progress(console=console, transient=True) as progress:
        for n, real in plan:
            results.append(bench_size(n, real, minilm, queries, progress))

    ins = Table(title="Insert (record_many, batches of 500)", title_justify="left")
    for col in (
        "records",
        "vectors",
        "embed ms/record",
        "insert rec/s (total)",
        "insert rec/s (SQLite row + vector)",
        "first query: index build s",
        "index",
        "reopen + first query s",
        "files MB",
    ):
        ins.add_column(col, justify="right")
    for r in results:
        ins.add_row(
            f"{r['n']:,}",
            r["vectors"],
            f"{r['embed_ms_per_rec']:.2f}",
            f"{r['insert_total_rps']:,.0f}",
            f"{r['insert_storage_rps']:,.0f}",
            f"{r['build_s']:.2f}",
            r["kind"],
            f"{r['reopen_s']:.2f}",
            f"{r['disk_mb']:.0f}",
        )
    console.print(ins)
    q = Table(
        title=f"Query latency, k=10, {queries} queries, query embedding excluded (ms)",
        title_justify="left",
    )
    for col in (
        "records",
        "soma p50",
        "soma p95",
        "filtered p50",
        "filtered p95",
        "numpy exact p50",
        "raw faiss p50",
        "soma / numpy",
        "recall@10",
        "query embed ms",
    ):
        q.add_column(col, justify="right")
    for r in results:
        q.add_row(
            f"{r['n']:,}",
            f"{r['q_p50']:.2f}",
            f"{r['q_p95']:.2f}",
            f"{r['f_p50']:.2f}",
            f"{r['f_p95']:.2f}",
            f"{r['brute_p50']:.2f}",
            f"{r['raw_p50']:.2f}",
            f"{r['q_p50'] / r['brute_p50']:.2f}x",
            f"{r['recall']:.3f}",
            f"{r['qembed_ms']:.1f}",
        )
    console.print(q)
    big = results[-1]
    verdict = "met" if big["q_p50"] <= 5.0 else "NOT met"
    console.print(
        f"goal query p50 <= 5 ms at {big['n']:,} records: {verdict} ({big['q_p50']:.2f} ms); "
        "filtered = line + where 'accuracy > 0.5'; "
        f"load average at the end {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
