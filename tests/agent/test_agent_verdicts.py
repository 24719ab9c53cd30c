"""Paired verdicts: the noise of the measurement, not the spread between pipelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soma_agent._losses import LossStore
from soma_agent._paired import paired_test, sample_losses
from soma_agent._verdict import judge


def _correctness(n: int, wrong: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    out[rng.choice(n, wrong, replace=False)] = 1.0
    return out


def test_regression_real_effect_on_600_samples_is_not_within_noise() -> None:
    # +2.7 points of accuracy on 600 validation samples was called "within noise" because
    # the threshold was the spread of the line's (different) pipelines.
    n = 600
    reference = np.zeros(n)
    reference[:120] = 1.0  # 80.0 % right
    new = reference.copy()
    new[:20] = 0.0  # the new pipeline fixes 20 samples and breaks 4: +2.67 points
    new[200:204] = 1.0
    test = paired_test(new, reference)
    assert test.rule == "mcnemar" and "20 sample(s) fixed, 4 broken" in test.detail
    assert test.p_value < 0.01 and test.better
    v = judge(0.8267, 0.80, "maximize", paired=test, reference_id="exp-a")
    assert v.verdict == "supported"
    assert v.test["rule"] == "mcnemar" and v.test["reference_id"] == "exp-a"
    assert "p = " in v.reason and "mcnemar" in v.reason


def test_one_sample_apart_is_noise_and_same_losses_are_identical() -> None:
    rng = np.random.default_rng(0)
    reference = _correctness(359, 30, rng)
    new = reference.copy()
    new[np.flatnonzero(reference)[0]] = 0.0
    test = paired_test(new, reference)
    assert not test.significant and test.p_value == 1.0
    assert judge(0.919, 0.916, "maximize", paired=test).verdict == "inconclusive"
    assert paired_test(reference, reference).p_value == 1.0


def test_regression_worse_draft_is_refuted_whatever_its_kind() -> None:
    # "not worse beyond noise" was said of a draft 0.09 R² worse; a paired bootstrap of the
    # squared errors sees it.
    rng = np.random.default_rng(1)
    y = rng.normal(size=150)
    good = y + rng.normal(scale=0.5, size=150)
    bad = y + rng.normal(scale=0.65, size=150)
    test = paired_test(sample_losses(bad, y, "r2"), sample_losses(good, y, "r2"))
    assert test.rule == "paired_bootstrap" and test.worse
    for expected in ("no_change", "improve"):
        assert judge(0.60, 0.69, "maximize", expected=expected, paired=test).verdict == "refuted"
    # and a better draft is never refuted
    flipped = paired_test(sample_losses(good, y, "r2"), sample_losses(bad, y, "r2"))
    assert flipped.better
    assert judge(0.69, 0.60, "maximize", expected="no_change", paired=flipped).verdict == (
        "supported"
    )


def test_mse_and_r2_make_the_same_decision() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=100)
    a, b = y + rng.normal(scale=0.4, size=100), y + rng.normal(scale=0.45, size=100)
    la, lb = sample_losses(a, y, "r2"), sample_losses(b, y, "mse")
    np.testing.assert_array_equal(la, sample_losses(a, y, "mse"))
    test = paired_test(la, lb)
    mse_a, mse_b = float(la.mean()), float(lb.mean())
    r2_a, r2_b = 1 - mse_a / y.var(), 1 - mse_b / y.var()
    v_r2 = judge(r2_a, r2_b, "maximize", paired=test)
    v_mse = judge(mse_a, mse_b, "minimize", paired=test)
    assert v_r2.verdict == v_mse.verdict
    assert (v_r2.delta > 0) == (v_mse.delta > 0)


def test_losses_validate_shapes_and_mae_uses_absolute_errors() -> None:
    with pytest.raises(ValueError, match="prediction"):
        sample_losses(np.zeros(3), np.zeros(4), "r2")
    with pytest.raises(ValueError, match="losses"):
        paired_test(np.zeros(3), np.zeros(4))
    assert sample_losses(np.array([1.0, 4.0]), np.array([0.0, 0.0]), "mae").tolist() == [1, 4]
    assert sample_losses(np.array([1, 2]), np.array([1, 3]), "accuracy").tolist() == [0, 1]


def test_loss_store_round_trip_and_bad_ids(tmp_path: Path) -> None:
    store = LossStore(tmp_path)
    store.put("exp-1", [0.0, 1.0, 0.5])
    assert LossStore(tmp_path).get("exp-1").tolist() == [0.0, 1.0, 0.5]
    assert store.get("exp-missing") is None and store.get(None) is None
    with pytest.raises(ValueError, match="experiment_id"):
        store.put("../evil", [1.0])
    assert not list(store.folder.glob(".*"))  # no temp file left behind
