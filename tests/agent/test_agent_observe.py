"""observe: what the loop knows before each hypothesis, read from the knowledge base."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soma.knowledge import Experiment, HashingEmbedder
from soma_agent._observe import build_observation
from soma_tools import ToolContext

ZCA = "Whitening the pixel intensities with ZCA removes correlated noise"
L2 = "Stronger L2 regularisation (a smaller C) keeps logistic regression from overfitting"
OTHER_HYPOTHESES = [
    "A random forest with more trees is more accurate",
    "k nearest neighbours with distance weights beats uniform weights",
    "Min-max scaling suits a support vector machine",
    "Selecting the 32 best pixels by ANOVA is enough",
    "A linear SVM trained by stochastic gradient descent is fast and accurate",
]
DISTRACTORS = [
    "Fewer boosting rounds avoid memorising the examples",
    "Averaging several bootstrapped models reduces variance",
    "A simpler model with fewer parameters generalises",
    "Cross-validation gives a more honest estimate",
]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _seed(tools: Any) -> dict[str, str]:
    """The project's line with rising values and one failure; a second line with the ZCA
    experiment (related work filed elsewhere)."""
    kb = tools.kb
    line = tools.resolve_line(None).name
    kb.create_line("whitening", metric="accuracy", direction="maximize")
    ids: dict[str, str] = {}
    texts = [L2, *OTHER_HYPOTHESES]
    for i, text in enumerate(texts):
        ids[text] = kb.record(
            Experiment(
                name=f"e{i}",
                line=line,
                hypothesis=text,
                pipeline_summary="StandardScale >> LogReg",
                metrics={"accuracy": 0.90 + i / 100},
                started=START + timedelta(minutes=i),
            )
        )
    ids["failed"] = kb.record(
        Experiment(
            name="broken",
            line=line,
            hypothesis="Sixty-four PCA components",
            status="failed",
            error="ValueError: n_components=64 must be <= 63\ntraceback...",
            started=START + timedelta(minutes=30),
        )
    )
    ids[ZCA] = kb.record(
        Experiment(
            name="zca",
            line="whitening",
            hypothesis=ZCA,
            metrics={"accuracy": 0.93},
            started=START + timedelta(minutes=40),
        )
    )
    return ids


def _observe(tools: Any, goal: str, pending: list[dict[str, Any]]) -> Any:
    return build_observation(
        tools,
        goal=goal,
        line=tools.resolve_line(None).name,
        iteration=3,
        n_experiments=2,
        max_experiments=10,
        pending=pending,
        no_improvement_for=1,
    )


def test_observation_holds_lines_best_failures_similar_and_filters(tools: Any) -> None:
    ids = _seed(tools)
    line = tools.resolve_line(None).name
    pending = [{"statement": "ZCA whitening of the pixel intensities", "spec": "X()"}]
    obs = _observe(tools, "regularisation against overfitting", pending)
    by_name = {ln.name: ln for ln in obs.lines}
    assert set(by_name) == {line, "whitening"}
    assert by_name[line].trend == "improving" and by_name[line].n_experiments == 7
    assert by_name["whitening"].best_experiment_id == ids[ZCA]
    assert obs.best_experiment_id == ids[OTHER_HYPOTHESES[-1]]
    assert obs.best_value == pytest.approx(0.95)
    assert [f["id"] for f in obs.failures] == [ids["failed"]]
    assert obs.failures[0]["error"] == "ValueError: n_components=64 must be <= 63"
    assert len(obs.recent) == 7 and obs.recent[-1]["id"] == ids["failed"]  # newest last
    # Similar to the goal, and to the pending hypothesis even on another line.
    similar = {s.id: s for s in obs.similar}
    assert similar[ids[L2]].query == "goal"
    assert similar[ids[ZCA]].query.startswith("pending: ZCA whitening")
    assert similar[ids[ZCA]].line == "whitening" and similar[ids[ZCA]].value == 0.93
    assert obs.pending == pending
    roles = {f["name"]: f["role"] for f in obs.filters}
    assert roles["LogReg"] == "model" and roles["PCA"] == "reducer"
    page = obs.render()
    for text in (ids[ZCA], "(for pending: ZCA whitening", "## Pending hypotheses", "LogReg"):
        assert text in page, text


def test_observation_of_an_empty_kb_has_no_similar(tools: Any) -> None:
    obs = _observe(tools, "maximize validation accuracy", [])
    assert obs.similar == [] and obs.best_value is None and obs.failures == []


def test_similar_experiments_are_found_by_meaning(digits_project: Path) -> None:
    # The real embedding model: the queries share no word with the hypotheses they find.
    tools = ToolContext(digits_project, embedder="default")
    try:
        ids = _seed(tools)
        line = tools.resolve_line(None).name
        for i, text in enumerate(DISTRACTORS):  # push the ZCA one out of the goal's top 5
            tools.kb.record(
                Experiment(name=f"x{i}", line=line, hypothesis=text, metrics={"accuracy": 0.5})
            )
        pending = [{"statement": "decorrelate the image pixels before training", "spec": "X()"}]
        obs = _observe(tools, "penalize large coefficients to generalize better", pending)
        goal_hits = [s.id for s in obs.similar if s.query == "goal"]
        pending_hits = [s.id for s in obs.similar if s.query.startswith("pending")]
        assert goal_hits[0] == ids[L2]
        assert ids[ZCA] not in goal_hits and pending_hits[0] == ids[ZCA]
    finally:
        tools.close()


class _SlowLoadingEmbedder(HashingEmbedder):
    """Its "model" loads (the worker's warm-up) only when released."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if "warm-up" in texts:
            assert self.loaded.wait(10)
        return super().embed(texts)


def test_regression_observe_does_not_wait_for_the_embedding_model_to_load(
    digits_project: Path,
) -> None:
    # The first semantic search of a run waited for all-MiniLM-L6-v2 to load (seconds).
    embedder = _SlowLoadingEmbedder()
    tools = ToolContext(digits_project, embedder=embedder)
    try:
        ids = _seed(tools)
        worker = tools.kb.embed_in_background()
        obs = _observe(tools, L2, [])
        assert obs.similar == [] and obs.not_yet_searchable == len(ids)
        assert "could not be searched by meaning" in obs.render()
        embedder.loaded.set()
        assert worker.drain(10)
        obs = _observe(tools, L2, [])
        assert obs.not_yet_searchable == 0 and obs.similar[0].id == ids[L2]
    finally:
        embedder.loaded.set()
        tools.close()
