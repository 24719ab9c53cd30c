"""A writer on a hot path records without embedding; the next semantic query, or a background
worker, catches up."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from soma.knowledge import Experiment, KnowledgeBase
from soma.knowledge._embed import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return super().embed(texts)


def test_regression_records_wait_for_no_embedding_when_embed_on_record_is_off(
    tmp_path: Path,
) -> None:
    # The agent's loop spent most of its bookkeeping embedding each experiment as it was
    # recorded (651 ms per experiment with all-MiniLM-L6-v2 on a loaded 2-core machine).
    embedder = CountingEmbedder()
    kb = KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    try:
        kb.create_line("main", metric="r2", direction="maximize")
        kb.embed_on_record = False
        for i, what in enumerate(("gradient boosting on scaled features", "ridge regression")):
            kb.record(Experiment(name=f"e{i}", line="main", hypothesis=what))
        assert embedder.calls == []  # nothing embedded while recording
        hits = kb.query("boosting", k=1)
        assert hits[0].experiment.name == "e0"
        assert 2 in embedder.calls  # the backlog, in one batch
        kb.embed_on_record = True
        embedder.calls.clear()
        kb.record(Experiment(name="e2", line="main", hypothesis="a forest"))
        assert embedder.calls == [1]
    finally:
        kb.close()


class GatedEmbedder(HashingEmbedder):
    """Blocks on texts that mention "gated" until released, as a slow model would."""

    def __init__(self, marker: str = "gated") -> None:
        super().__init__()
        self.marker = marker
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if any(self.marker in t for t in texts):
            self.entered.set()
            assert self.gate.wait(10)
            if self.fail:
                raise RuntimeError("model broke")
        return super().embed(texts)


def _names(kb: KnowledgeBase, text: str) -> set[str]:
    return {hit.experiment.name for hit in kb.query(text, k=10)}


def test_regression_a_query_never_waits_for_the_background_embedding(tmp_path: Path) -> None:
    # With embedding deferred to the next query, the agent's observe step still ran every
    # batch on the loop's thread (4.5-8.6 s a run with all-MiniLM-L6-v2).
    embedder = GatedEmbedder()
    kb = KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    try:
        kb.create_line("main", metric="r2", direction="maximize")
        kb.record(Experiment(name="early", line="main", hypothesis="ridge regression"))
        worker = kb.embed_in_background()
        assert worker.drain(10)
        kb.record(Experiment(name="late", line="main", hypothesis="gated ridge forest"))
        assert embedder.entered.wait(10)  # the worker is stuck inside the slow batch
        started = time.perf_counter()
        assert _names(kb, "ridge") == {"early"}  # searched what is embedded, did not wait
        assert time.perf_counter() - started < 5
        assert kb.not_yet_searchable() == 1
        embedder.gate.set()
        assert worker.drain(10)
        assert _names(kb, "ridge") == {"early", "late"}  # never lost: searchable once embedded
        assert kb.not_yet_searchable() == 0
        # A changed text is embedded again in the background too.
        late = next(e for e in kb.experiments() if e.name == "late")
        kb.update(late.id, notes="boosting instead")
        assert worker.drain(10)
        assert "late" in _names(kb, "boosting instead")
    finally:
        embedder.gate.set()
        kb.close()


def test_a_failing_background_embedding_surfaces_at_the_next_query(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    embedder.fail = True
    kb = KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    try:
        kb.create_line("main", metric="r2", direction="maximize")
        worker = kb.embed_in_background()
        kb.record(Experiment(name="x", line="main", hypothesis="gated lasso"))
        embedder.gate.set()
        assert not worker.drain(10)
        assert isinstance(worker.error, RuntimeError)
        with pytest.raises(RuntimeError, match="model broke"):
            kb.query("lasso")  # queries embed for themselves again: the error is not hidden
    finally:
        embedder.gate.set()
        kb.close()


def test_stopping_the_worker_leaves_the_backlog_to_the_next_query(tmp_path: Path) -> None:
    embedder = GatedEmbedder()
    kb = KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    try:
        kb.create_line("main", metric="r2", direction="maximize")
        kb.embed_in_background()
        kb.record(Experiment(name="x", line="main", hypothesis="gated lasso"))
        assert embedder.entered.wait(10)
        embedder.gate.set()
        kb.stop_background_embedding()
        kb.record(Experiment(name="y", line="main", hypothesis="lasso path"))  # no worker now
        assert _names(kb, "lasso") == {"x", "y"}
        assert kb.not_yet_searchable() == 0
    finally:
        embedder.gate.set()
        kb.close()


def test_regression_closing_does_not_wait_for_the_model_to_load(tmp_path: Path) -> None:
    # A short agent run ended only once all-MiniLM-L6-v2 had loaded in the background.
    embedder = GatedEmbedder(marker="warm-up")  # the worker's first call loads the model
    kb = KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    try:
        kb.create_line("main", metric="r2", direction="maximize")
        kb.embed_in_background()
        assert embedder.entered.wait(10)
        started = time.perf_counter()
        kb.close()
        assert time.perf_counter() - started < 5
    finally:
        embedder.gate.set()
