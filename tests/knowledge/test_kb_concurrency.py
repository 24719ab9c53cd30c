"""Several processes and threads writing one knowledge base at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from soma.errors import KnowledgeBaseError
from soma.knowledge import SCHEMA_VERSION, HashingEmbedder, KnowledgeBase

_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from soma.knowledge import Experiment, HashingEmbedder, KnowledgeBase

    path, worker, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    kb = KnowledgeBase(path, embedder=HashingEmbedder())
    kb.ensure_line("race", metric="accuracy", direction="maximize")
    while not go.exists():  # start all workers together, for maximum contention
        time.sleep(0.005)
    for i in range(n):
        kb.record(Experiment(name=f"w{worker}-{i}", line="race", metrics={"accuracy": i / n},
                             idempotency_key=f"w{worker}-{i}"))
        if i % 50 == 0:
            kb.count()
            kb.journal_append(f"run-{worker}", i, "tick", {"i": i})
    # Retrying a few records (crash recovery) must not add rows.
    for i in range(5):
        kb.record(Experiment(name="retry", line="race", idempotency_key=f"w{worker}-{i}"))
    kb.close()
    """
)


def test_four_processes_250_inserts_each_give_exactly_1000(tmp_path: Path) -> None:
    """4 processes x 250 concurrent single-record transactions → exactly 1,000 records.

    The workers use the deterministic HashingEmbedder, passed explicitly: loading the real model
    in four processes on two cores would cost ~20 s and tests nothing about storage.
    """
    path = tmp_path / "kb.sqlite"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), str(w), "250", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    # Let every worker open the file (racing on creation and migration), then release them.
    go.touch()
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.count() == 1000
        names = {e.name for e in kb.experiments()}
        assert names == {f"w{w}-{i}" for w in range(4) for i in range(250)}
        assert len({e.id for e in kb.experiments()}) == 1000
        assert sorted(kb.journal_runs()) == [f"run-{w}" for w in range(4)]
        assert all(len(kb.journal(f"run-{w}")) == 5 for w in range(4))
        # Every record got its vector: the index holds all of them.
        top = kb.query("w3-17", k=1)[0]
        assert top.experiment.name == "w3-17"


def test_threads_share_one_knowledge_base(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("t", metric="accuracy", direction="maximize")
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(40):
                    exp_id = kb.record({"name": f"t{t}-{i}", "line": "t"})
                    kb.update(exp_id, metrics={"accuracy": i / 40})
                    kb.query(f"t{t}-{i}", k=2)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert kb.count() == 160
        assert len(kb.trajectory("t")) == 160


def _hold_write_lock(path: Path, seconds: float, ready: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    ready.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_a_held_lock_is_waited_for_then_reported_clearly(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
    ready = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 1.0, ready))
    holder.start()
    ready.wait()
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:  # opening needs no write lock
        exp_id = kb.record({"name": "waits its turn", "line": "l"})  # blocks ~1 s, then works
        assert kb.get(exp_id).name == "waits its turn"
    holder.join()

    ready.clear()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 3.0, ready))
    holder.start()
    ready.wait()
    try:
        with KnowledgeBase(path, embedder=HashingEmbedder(), lock_timeout_s=0.5) as kb:
            with pytest.raises(KnowledgeBaseError, match="stayed locked by another process"):
                kb.record({"name": "gives up", "line": "l"})
            assert kb.count() == 1  # reads still work while another process writes
    finally:
        holder.join()


def test_not_a_knowledge_base_and_newer_schema(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(KnowledgeBaseError, match=r"junk\.sqlite"):
        KnowledgeBase(junk, embedder=HashingEmbedder())
    path = tmp_path / "kb.sqlite"
    KnowledgeBase(path, embedder=HashingEmbedder()).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(KnowledgeBaseError, match="newer than this Soma"):
        KnowledgeBase(path, embedder=HashingEmbedder())
