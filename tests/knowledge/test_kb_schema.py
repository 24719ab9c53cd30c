"""The schema is versioned: older files open and migrate, a failed migration changes nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from kb_helpers import exp
from sqlite_utils import Database

from soma.errors import KnowledgeBaseError
from soma.knowledge import SCHEMA_VERSION, HashingEmbedder, KnowledgeBase, _store

# Schema version 1 exactly as released (sqlite_master of a file Soma wrote), frozen here so a
# later edit to the first migration cannot silently stop old files from opening.
V1_SCHEMA = """
CREATE TABLE "kb_meta" ("key" TEXT PRIMARY KEY, "value" TEXT);
CREATE TABLE "lines" (
   "name" TEXT PRIMARY KEY, "metric" TEXT NOT NULL, "direction" TEXT NOT NULL,
   "description" TEXT, "created" REAL NOT NULL, "status" TEXT NOT NULL);
CREATE TABLE "experiments" (
   "seq" INTEGER PRIMARY KEY, "id" TEXT NOT NULL, "name" TEXT NOT NULL, "line" TEXT,
   "hypothesis" TEXT, "pipeline_spec" TEXT, "pipeline_summary" TEXT, "params" TEXT,
   "metrics" TEXT, "primary_metric" TEXT, "direction" TEXT, "status" TEXT NOT NULL,
   "error" TEXT, "parent_id" TEXT, "action" TEXT NOT NULL, "tags" TEXT, "notes" TEXT,
   "code_fingerprint" TEXT, "data_fingerprint" TEXT, "cache_keys" TEXT,
   "origin" TEXT NOT NULL, "verdict" TEXT, "idempotency_key" TEXT, "run_id" TEXT,
   "started" REAL NOT NULL, "finished" REAL, "duration_s" REAL, "seed" INTEGER,
   "text_version" INTEGER NOT NULL);
CREATE UNIQUE INDEX "idx_experiments_id" ON "experiments" ("id");
CREATE UNIQUE INDEX "idx_experiments_idempotency_key" ON "experiments" ("idempotency_key");
CREATE INDEX "idx_experiments_line_started" ON "experiments" ("line", "started");
CREATE INDEX "idx_experiments_started" ON "experiments" ("started");
CREATE INDEX "idx_experiments_text_version" ON "experiments" ("text_version");
CREATE INDEX "idx_experiments_run_id" ON "experiments" ("run_id");
CREATE TABLE "embeddings" (
   "seq" INTEGER, "model" TEXT, "text_version" INTEGER, "vector" BLOB,
   PRIMARY KEY ("seq", "model"));
CREATE TABLE "journal" (
   "id" INTEGER PRIMARY KEY, "run_id" TEXT NOT NULL, "iteration" INTEGER NOT NULL,
   "kind" TEXT NOT NULL, "payload" TEXT NOT NULL, "time" REAL NOT NULL);
CREATE INDEX "idx_journal_run_id_id" ON "journal" ("run_id", "id");
INSERT INTO kb_meta VALUES ('kb_id', 'v1-file');
INSERT INTO lines VALUES ('digits', 'accuracy', 'maximize', 'old line', 1740819600.0, 'active');
INSERT INTO experiments (seq, id, name, line, hypothesis, pipeline_summary, params, metrics,
   primary_metric, direction, status, action, tags, notes, cache_keys, origin, started,
   text_version)
VALUES
   (1, 'exp-old-1', 'pca then logistic regression', 'digits', NULL, 'PCA >> LogReg',
    '{"C": 1.0}', '{"accuracy": 0.91}', 'accuracy', 'maximize', 'ok', 'manual', '["old"]', '',
    '{}', 'cli', 1740819600.0, 1),
   (2, 'exp-old-2', 'random forest on raw pixels', 'digits', NULL, 'RandomForest',
    '{"trees": 200}', '{"accuracy": 0.95}', 'accuracy', 'maximize', 'ok', 'manual', '[]', '',
    '{}', 'cli', 1740823200.0, 2);
INSERT INTO journal VALUES (1, 'run-old', 0, 'run_started', '{"goal": "g"}', 1740819600.0);
PRAGMA user_version = 1;
"""


def _v1_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    return path


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _add_owner_column(db: Database) -> None:
    """A stand-in for the next release's migration: a new column, backfilled."""
    db.conn.execute("ALTER TABLE lines ADD COLUMN owner TEXT")
    db.conn.execute("UPDATE lines SET owner = 'migrated'")


def test_a_released_version_1_file_opens_with_its_records(tmp_path: Path) -> None:
    path = _v1_file(tmp_path / "kb.sqlite")
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert [e.id for e in kb.experiments()] == ["exp-old-1", "exp-old-2"]
        assert kb.get("exp-old-2").params == {"trees": 200}
        assert kb.best("digits").id == "exp-old-2"
        assert kb.journal("run-old")[0].payload == {"goal": "g"}
        # No vectors were stored for this embedder: the first query embeds them.
        assert kb.query("random forest raw pixels", k=1)[0].experiment.id == "exp-old-2"
        new_id = kb.record(exp("new run", line="digits", metrics={"accuracy": 0.97}))
        assert kb.best("digits").id == new_id
    assert _version(path) == SCHEMA_VERSION


def test_an_empty_file_is_migrated_from_version_0(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    sqlite3.connect(path).close()  # an existing, empty SQLite file: user_version 0
    assert _version(path) == 0
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="loss", direction="minimize")
        assert kb.count(line="l") == 0
    assert _version(path) == SCHEMA_VERSION


def test_an_older_file_is_migrated_keeping_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _v1_file(tmp_path / "kb.sqlite")
    monkeypatch.setattr(_store, "_MIGRATIONS", (*_store._MIGRATIONS, _add_owner_column))
    monkeypatch.setattr(_store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.get_line("digits").description == "old line"
        assert [e.id for e in kb.experiments(line="digits")] == ["exp-old-1", "exp-old-2"]
    assert _version(path) == SCHEMA_VERSION + 1
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT owner FROM lines").fetchall() == [("migrated",)]
    conn.close()
    # Reopening an up-to-date file runs nothing again (the ALTER would fail if it did).
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        assert kb.count() == 2


def test_a_failing_migration_leaves_the_file_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _v1_file(tmp_path / "kb.sqlite")

    def half_done(db: Database) -> None:
        _add_owner_column(db)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_store, "_MIGRATIONS", (*_store._MIGRATIONS, half_done))
    monkeypatch.setattr(_store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(KnowledgeBaseError) as info:
        KnowledgeBase(path, embedder=HashingEmbedder())
    message = str(info.value)
    assert "kb.sqlite" in message and "from version 1 to 2" in message
    assert "disk on fire" in message and "left unchanged" in message
    assert _version(path) == 1
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(lines)")]
    assert "owner" not in columns  # the half-done step was rolled back with the rest
    conn.close()


def test_two_openers_migrate_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _v1_file(tmp_path / "kb.sqlite")
    runs: list[int] = []

    def slow(db: Database) -> None:
        runs.append(1)
        time.sleep(0.3)  # long enough for the second opener to arrive meanwhile
        _add_owner_column(db)

    monkeypatch.setattr(_store, "_MIGRATIONS", (*_store._MIGRATIONS, slow))
    monkeypatch.setattr(_store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            KnowledgeBase(path, embedder=HashingEmbedder()).close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len(runs) == 1
    assert _version(path) == SCHEMA_VERSION + 1
