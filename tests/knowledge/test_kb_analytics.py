"""Trajectory, trend, change points, best and promising lines on synthetic sequences."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from kb_helpers import exp, record_series

from soma.errors import ValidationError
from soma.knowledge import KnowledgeBase, Trend, classify_trend, detect_change_points


def _noise(n: int, seed: int, scale: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


@pytest.mark.parametrize(
    ("values", "direction", "expected"),
    [
        ([0.80, 0.82, 0.85, 0.86, 0.88, 0.90], "maximize", Trend.IMPROVING),
        ([0.80, 0.82, 0.85, 0.86, 0.88, 0.90], "minimize", Trend.DECLINING),
        ([0.90, 0.70, 0.50, 0.45, 0.40], "minimize", Trend.IMPROVING),
        ([0.90, 0.70, 0.50, 0.45, 0.40], "maximize", Trend.DECLINING),
        ([0.9] * 10, "maximize", Trend.PLATEAUED),
        ([0.9, 0.91, 0.89, 0.9, 0.91, 0.9, 0.89, 0.9], "maximize", Trend.PLATEAUED),
        ([0.5, 0.9, 0.7], "maximize", Trend.UNKNOWN),  # too few points
        ([], "minimize", Trend.UNKNOWN),
    ],
)
def test_trend_rule(values: list[float], direction: str, expected: Trend) -> None:
    assert classify_trend(values, direction) is expected


def test_trend_is_robust_to_noise_and_outliers() -> None:
    flat = [classify_trend(0.8 + _noise(10, seed), "maximize") for seed in range(200)]
    assert flat.count(Trend.PLATEAUED) >= 170  # >= 85% of pure-noise sequences read flat
    rising = 0.5 + 0.01 * np.arange(12) + _noise(12, 1)  # one sigma per experiment
    assert classify_trend(rising, "maximize") is Trend.IMPROVING
    falling_loss = 2.0 - 0.05 * np.arange(12) + _noise(12, 2, 0.03)
    assert classify_trend(falling_loss, "minimize") is Trend.IMPROVING
    # One wild value at the end does not turn a plateau around.
    spiky = [*list(0.8 + _noise(11, 3)), 0.2]
    assert classify_trend(spiky, "maximize") is Trend.PLATEAUED
    # Only the recent window counts: a long climb that has stalled is a plateau.
    stalled = [*list(np.linspace(0.5, 0.9, 12)), *list(0.9 + _noise(10, 4, 0.002))]
    assert classify_trend(stalled, "maximize") is Trend.PLATEAUED
    with pytest.raises(ValidationError):
        classify_trend([1, 2, 3, 4], "up")


def test_change_points_find_level_shifts_not_noise() -> None:
    steps = np.r_[0.70 + _noise(10, 5), 0.80 + _noise(10, 6), 0.76 + _noise(10, 7)]
    assert detect_change_points(steps) == [10, 20]
    quiet = [len(detect_change_points(0.8 + _noise(20, seed))) for seed in range(100)]
    assert sum(1 for q in quiet if q) <= 10
    assert detect_change_points([0.5] * 12) == []
    assert detect_change_points([0.1, 0.9, 0.1]) == []  # too short
    assert detect_change_points([0, 0, 0, 0, 1, 1, 1, 1]) == [4]  # noise-free step


def test_kb_analytics_for_a_minimize_line(kb: KnowledgeBase) -> None:
    kb.create_line("loss", metric="loss", direction="minimize")
    values = list(np.r_[1.0 + _noise(8, 8, 0.02), 0.6 + _noise(8, 9, 0.02)])
    params = [{"lr": 0.1, "depth": 2}] * 8 + [{"lr": 0.01, "depth": 2}] * 8
    ids = record_series(kb, "loss", values, metric="loss", params=params)
    kb.record(exp("crashed", line="loss", i=100, status="failed", error="CUDA OOM"))

    points = kb.trajectory("loss")
    assert [p.experiment_id for p in points] == ids  # failed one left out, order kept
    assert [p.value for p in points] == pytest.approx(values)
    best_so_far = np.minimum.accumulate(values)
    assert [p.best_so_far for p in points] == pytest.approx(list(best_so_far))
    best_id = ids[int(np.argmin(values))]
    assert points[-1].best_experiment_id == best_id
    assert kb.best("loss").id == best_id

    (cp,) = kb.change_points("loss")
    assert (cp.index, cp.experiment_id, cp.previous_experiment_id) == (8, ids[8], ids[7])
    assert cp.improved is True and cp.after_mean < cp.before_mean
    assert cp.before_mean == pytest.approx(np.mean(values[:8]))
    assert cp.before_ids == ids[:8] and cp.after_ids == ids[8:]
    assert cp.changes == {"params.lr": [0.1, 0.01]}
    assert "lr 0.1 → 0.01" in cp.explanation and ids[8] in cp.explanation
    assert "better for a metric to minimize" in cp.explanation


def test_trend_through_the_kb_uses_the_declared_direction(kb: KnowledgeBase) -> None:
    kb.create_line("up", metric="accuracy", direction="maximize")
    kb.create_line("down", metric="error", direction="minimize")
    record_series(kb, "up", [0.5, 0.55, 0.6, 0.64, 0.7, 0.73])
    record_series(kb, "down", [0.5, 0.55, 0.6, 0.64, 0.7, 0.73], metric="error")
    assert kb.trend("up") is Trend.IMPROVING
    assert kb.trend("down") is Trend.DECLINING


def test_trajectory_of_another_metric_needs_its_direction(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    kb.record_many(
        [exp(f"e{i}", i=i, metrics={"accuracy": 0.5, "latency": 10.0 - i}) for i in range(4)]
    )
    with pytest.raises(ValidationError) as info:
        kb.trajectory("l", "latency")
    assert info.value.field == "direction" and "latency" in str(info.value)
    points = kb.trajectory("l", "latency", direction="minimize")
    assert [p.best_so_far for p in points] == [10.0, 9.0, 8.0, 7.0]
    with pytest.raises(ValidationError):
        kb.trajectory("l", "accuracy", direction="minimize")


def test_change_point_explanation_names_pipeline_and_fingerprints(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    before = dict(pipeline_summary="Scale >> LogReg", code_fingerprint="c1", seed=1)
    after = dict(pipeline_summary="Scale >> PCA >> LogReg", code_fingerprint="c2", seed=1)
    exps = [
        exp(f"e{i}", i=i, metrics={"accuracy": v}, **(before if i < 6 else after))
        for i, v in enumerate([0.7, 0.71, 0.69, 0.7, 0.71, 0.7, 0.9, 0.91, 0.9, 0.89, 0.9, 0.91])
    ]
    exps[6] = exps[6].model_copy(update={"hypothesis": "PCA removes noise"})
    kb.record_many(exps)
    (cp,) = kb.change_points("l")
    assert set(cp.changes) == {"pipeline", "code_fingerprint"}
    assert "'Scale >> LogReg' → 'Scale >> PCA >> LogReg'" in cp.explanation
    assert "code fingerprint changed" in cp.explanation
    assert "PCA removes noise" in cp.explanation


def test_best_is_none_without_successful_runs(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    assert kb.best("l") is None and kb.trajectory("l") == [] and kb.trend("l") is Trend.UNKNOWN
    kb.record(exp("bad", status="failed", error="boom"))
    kb.record(exp("no metric"))
    assert kb.best("l") is None and kb.change_points("l") == []


def test_promising_lines(kb: KnowledgeBase) -> None:
    for name in ("climbing", "top", "stale-top", "poor-flat"):
        kb.create_line(name, metric="accuracy", direction="maximize")
    kb.create_line("loss-line", metric="loss", direction="minimize")
    record_series(kb, "climbing", [0.5, 0.55, 0.6, 0.66, 0.7, 0.74])
    record_series(kb, "top", [0.95, 0.951, 0.949, 0.95])
    record_series(kb, "poor-flat", [0.6, 0.6, 0.6, 0.6])
    record_series(kb, "loss-line", [0.3, 0.3, 0.3, 0.3], metric="loss")  # best of its own kind
    # Near the best but untouched for a month before the newest experiment: not "recent".
    kb.record_many(
        [
            exp(f"old{i}", line="stale-top", i=i - 24 * 40, metrics={"accuracy": 0.949})
            for i in range(4)
        ]
    )
    found = {p.name: p for p in kb.promising_lines(k=10)}
    assert set(found) == {"climbing", "top", "loss-line"}
    assert found["climbing"].reasons == ["improving"]
    assert found["top"].trend is Trend.PLATEAUED
    assert "is the best of 4 comparable lines" in found["top"].reasons[0]
    # The only loss line is not compared with itself.
    assert "the only line measuring loss" in found["loss-line"].reasons[0]
    assert found["top"].best_experiment_id == kb.best("top").id
    assert [p.name for p in kb.promising_lines(k=1)] == [kb.promising_lines(k=10)[0].name]
    wider = kb.promising_lines(k=10, recent=timedelta(days=100))
    assert "stale-top" in {p.name for p in wider}
    with pytest.raises(ValidationError):
        kb.promising_lines(k=0)


def test_an_archived_line_is_never_promising_but_still_sets_the_bar(kb: KnowledgeBase) -> None:
    for name in ("climbing", "top", "near-top"):
        kb.create_line(name, metric="accuracy", direction="maximize")
    record_series(kb, "climbing", [0.5, 0.55, 0.6, 0.66, 0.7, 0.74])
    record_series(kb, "top", [0.99, 0.99, 0.99, 0.99])
    record_series(kb, "near-top", [0.94, 0.94, 0.94, 0.94])
    assert {p.name for p in kb.promising_lines(k=10)} == {"climbing", "top"}
    kb.update_line("top", status="archived")
    # "near-top" is still measured against the archived line's 0.99, so it stays out.
    assert {p.name for p in kb.promising_lines(k=10)} == {"climbing"}
    kb.update_line("climbing", status="archived")
    assert kb.promising_lines(k=10) == []
    assert kb.best("climbing") is not None and kb.trend("climbing") is Trend.IMPROVING


def test_change_points_on_a_noisy_minimize_sequence_with_two_shifts(kb: KnowledgeBase) -> None:
    """Loss falls in two steps through noise: both steps found, each an improvement, each
    explained by its own change."""
    kb.create_line("loss", metric="loss", direction="minimize")
    loss = np.r_[1.0 + _noise(8, 11, 0.02), 0.7 + _noise(8, 12, 0.02), 0.4 + _noise(8, 13, 0.02)]
    params = [{"width": 64, "lr": 0.1}] * 8 + [{"width": 128, "lr": 0.1}] * 8
    params += [{"width": 128, "lr": 0.01}] * 8
    ids = record_series(kb, "loss", list(loss), metric="loss", params=params)
    first, second = kb.change_points("loss")
    assert (first.experiment_id, second.experiment_id) == (ids[8], ids[16])
    assert first.improved and second.improved
    assert first.changes == {"params.width": [64, 128]}
    assert second.changes == {"params.lr": [0.1, 0.01]}
    assert "fell from" in second.explanation and "lr 0.1 → 0.01" in second.explanation
    # The recent window (last 8) sits on the last plateau; the first 16 read as improving.
    assert kb.trend("loss") is Trend.PLATEAUED
    assert classify_trend(loss[:12], "minimize") is Trend.IMPROVING
