"""What the temporal side adds: time-windowed search, a line's hypothesis trajectory with its
direction changes, and the novelty of a proposed hypothesis. Run on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import T0, exp

from soma.errors import ValidationError
from soma.knowledge import HashingEmbedder, KnowledgeBase, _search, detect_direction_changes

CONV = [
    f"convolution net with dropout {p} and wider layers" for p in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
]
TREES = [f"gradient boosted trees with depth {d} on raw pixels" for d in (2, 3, 4, 5, 6, 7)]


def _words(i: int) -> str:
    return f"topic{i % 7} words{i % 5} item{i}"


@pytest.mark.parametrize("hnsw_threshold", [10_000, 50])
def test_time_window_search_matches_exact_filtered_ranking(
    tmp_path: Path, hnsw_threshold: int
) -> None:
    with KnowledgeBase(
        tmp_path / "kb.sqlite", embedder=HashingEmbedder(), hnsw_threshold=hnsw_threshold
    ) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        kb.create_line("m", metric="accuracy", direction="maximize")
        exps = [exp(_words(i), line="lm"[i % 2], i=i) for i in range(300)]
        ids = kb.record_many(exps)
        started = {i: e.started for i, e in zip(ids, exps, strict=True)}
        for since_h, until_h, line in [
            (10, 40, None),
            (100, 299, "m"),
            (0, 5, None),
            (50, 50, None),
        ]:
            since, until = T0 + timedelta(hours=since_h), T0 + timedelta(hours=until_h)
            hits = kb.query("topic3 words3", since=since, until=until, line=line, k=10)
            inside = [
                i
                for i, e in zip(ids, exps, strict=True)
                if since <= e.started <= until and (line is None or e.line == line)
            ]
            assert {h.experiment.id for h in hits} <= set(inside)
            assert len(hits) == min(10, len(inside))
            # Exact scores of everything in the window, best first, agree with the hits.
            vectors = kb.embedder.embed([_words(ids.index(i)) for i in inside])
            query = kb.embedder.embed(["topic3 words3"])[0]
            exact = sorted(zip(vectors @ query, inside, strict=True), key=lambda p: -p[0])
            assert [round(h.score, 4) for h in hits] == [round(float(s), 4) for s, _ in exact[:10]]
            assert all(since <= started[h.experiment.id] <= until for h in hits)


def test_time_window_is_pushed_into_a_temporal_index(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[object, object]] = []
    search = _search.SemanticIndex.search

    def spy(self, query, k, where=None, window=None):  # type: ignore[no-untyped-def]
        seen.append((where, window))
        return search(self, query, k, where, window)

    monkeypatch.setattr(_search.SemanticIndex, "search", spy)
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        kb.record_many([exp(_words(i), i=i) for i in range(20)])
        hits = kb.query("topic1", since=T0 + timedelta(hours=5), until=T0 + timedelta(hours=9))
    assert len(hits) == 5
    where, window = seen[-1]
    if backend == "chronos":  # the index filters by start time itself: no SQL filter at all
        assert where is None and window is not None
        assert window.start == (T0 + timedelta(hours=5)).timestamp()
    else:  # FAISS has no start times: the window is an SQL condition checked on its answers
        assert where is not None and window is None


def test_a_change_of_focus_is_one_direction_change(tmp_path: Path, backend: str) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        kb.create_line("other", metric="accuracy", direction="maximize")
        texts = CONV + TREES
        ids = kb.record_many(
            [
                exp(f"try {i}", i=i, hypothesis=t, metrics={"accuracy": 0.7 if i < 6 else 0.9})
                for i, t in enumerate(texts)
            ]
        )
        # Another line at the same times stays out of this line's trajectory.
        kb.record_many([exp(f"x {i}", line="other", i=i, hypothesis=CONV[0]) for i in range(4)])
        path = kb.hypothesis_trajectory("l")
        assert [p.experiment_id for p in path.points] == ids
        assert ("chronos" in path.source) == (backend == "chronos")
        assert path.points[0].step == 0.0 and path.points[0].from_start == 0.0
        assert path.points[11].from_start > path.points[1].from_start
        assert path.total_drift == pytest.approx(path.points[-1].from_start)
        [change] = path.direction_changes
        assert change.index == 6 and change.experiment_id == ids[6]
        assert change.previous_experiment_id == ids[5]
        assert change.before_ids == ids[:6] and change.after_ids == ids[6:]
        assert change.before_focus_id in ids[:6] and change.after_focus_id in ids[6:]
        assert change.drift > 0.3
        assert (change.before_value, change.after_value) == (pytest.approx(0.7), pytest.approx(0.9))
        assert "convolution" in change.explanation and "trees" in change.explanation
        # The metric's own change point sits beside it, at the same experiment.
        assert [cp.experiment_id for cp in path.metric_change_points] == [ids[6]]
        # A window keeps only the experiments started inside it.
        late = kb.hypothesis_trajectory("l", since=T0 + timedelta(hours=6))
        assert [p.experiment_id for p in late.points] == ids[6:]
        assert late.direction_changes == []


def test_a_steady_line_has_no_direction_change(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        kb.record_many([exp(f"try {i}", i=i, hypothesis=CONV[i % 6]) for i in range(14)])
        assert kb.hypothesis_trajectory("l").direction_changes == []
        with pytest.raises(Exception, match="nope"):
            kb.hypothesis_trajectory("nope")


def test_regression_an_empty_line_has_an_empty_hypothesis_trajectory(tmp_path: Path) -> None:
    # get_trajectory(hypotheses=true) on a line with no experiments failed unexpectedly
    # (found by tools/bench/fuzz_mcp.py): "cannot reshape array of size 0".
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("z", metric="accuracy", direction="maximize")
        path = kb.hypothesis_trajectory("z")
        assert path.points == [] and path.direction_changes == [] and path.total_drift == 0.0
        kb.record_many([exp("try 0", line="z", i=0, hypothesis=CONV[0])])
        window = kb.hypothesis_trajectory("z", since=T0 + timedelta(days=30))
        assert window.points == []
        assert len(kb.hypothesis_trajectory("z").points) == 1


def test_direction_changes_are_calibrated_on_noise() -> None:
    rng = np.random.default_rng(7)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    false = sum(bool(detect_direction_changes(unit(rng.normal(size=(16, 64))))) for _ in range(100))
    assert false <= 2
    a, b = rng.normal(size=64), rng.normal(size=64)
    two = np.vstack([unit(a + rng.normal(size=(8, 64))), unit(b + rng.normal(size=(8, 64)))])
    assert detect_direction_changes(two) == [8]
    assert detect_direction_changes(two[:3]) == []


def test_novelty_against_recent_refutations(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        recent, old, kept = kb.record_many(
            [
                exp("a", hypothesis=CONV[2], verdict="refuted", started=now - timedelta(days=2)),
                exp("b", hypothesis=TREES[1], verdict="refuted", started=now - timedelta(days=90)),
                exp("c", hypothesis=TREES[3], verdict="supported", started=now - timedelta(days=1)),
            ]
        )
        circling = kb.novelty(CONV[3], line="l")
        assert circling.nearest[0].experiment.id == recent
        assert circling.novelty < 0.5 and circling.similarity == pytest.approx(1 - circling.novelty)
        assert circling.verdicts == ["refuted"] and circling.window_start is not None
        # The refuted tree idea is too old for the default 30 days; a supported one never counts.
        trees = kb.novelty(TREES[2], line="l")
        assert {h.experiment.id for h in trees.nearest} == {recent}
        assert trees.novelty > 0.8
        assert kb.novelty(TREES[2], within=None).nearest[0].experiment.id in {old, kept} - {kept}
        assert (
            kb.novelty(TREES[2], within=timedelta(days=5), verdicts=()).nearest[0].experiment.id
            == kept
        )
        empty = kb.novelty("anything at all", line="l", within="1h")
        assert (empty.novelty, empty.similarity, empty.nearest) == (1.0, None, [])
        with pytest.raises(ValidationError) as info:
            kb.novelty("  ")
        assert info.value.field == "text"
        with pytest.raises(ValidationError) as info:
            kb.novelty("x", within="soon")
        assert info.value.field == "within"
        with pytest.raises(ValidationError) as info:
            kb.novelty("x", verdicts=("wrong",))
        assert info.value.field == "verdict"
