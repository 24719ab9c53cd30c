"""A writer on a hot path records without embedding; the next semantic query catches up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
