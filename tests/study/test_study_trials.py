"""Trial outcomes: failures with node names, all-failed studies, pruning, the shared cache."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from study_helpers import Boom, Curve, LossCurve, Ridge, Scale, predicted_value

from soma import Cache, Graph, StudyError
from soma.study import Pruned, Study, report


def test_failing_trial_is_recorded_with_its_node_and_the_study_goes_on(regression_data):
    g = Graph.somatize(Scale() >> Boom() >> Ridge())
    x_train, y_train, x_valid, y_valid = regression_data
    data = (x_train, y_train, x_valid, y_valid)
    space = {"ridge.alpha": 1.0, "scale.center": True}
    result = Study(g, data=data, metric="mse", sampler="grid", space=space).run()
    by_fail = {t.params["boom.fail"]: t for t in result.trials}
    failed, ok = by_fail[True], by_fail[False]
    assert failed.status == "failed" and failed.node == "boom"
    assert "boom: bad configuration" in failed.error and "'boom'" in failed.error
    assert ok.status == "ok" and ok.value is not None
    assert result.counts["failed"] == 1 and result.best_trial.number == ok.number
    assert any("boom: bad configuration" in e for e in result.errors)


def test_every_trial_failed_is_a_study_error(regression_data):
    study = Study(
        Scale() >> Boom() >> Ridge(), data=regression_data, metric="mse",
        space={"boom.fail": True}, n_trials=3, sampler="random", seed=0,
    )  # fmt: skip
    with pytest.raises(StudyError, match=r"every trial .* failed \(3\).*'boom'") as info:
        study.run()
    assert info.value.result.counts["failed"] == 3


def test_a_metric_returning_nan_fails_the_trial(regression_data):
    def broken(y_true, y_pred):
        return float("nan")

    with pytest.raises(StudyError) as info:
        Study(Ridge(), data=regression_data, metric=broken, n_trials=2, seed=0).run()
    trial = info.value.result.trials[0]
    assert trial.status == "failed" and "nan" in trial.error and trial.node is None


def test_median_pruner_prunes_worse_learning_curves(unit_data):
    Curve.seen_steps.clear()
    qualities = [0.9, 0.8, 0.85, 0.95, 0.88, 0.1, 0.2, 0.92, 0.15, 0.05, 0.3, 0.87]
    study = Study(
        Curve(), data=unit_data, metric=predicted_value, direction="maximize",
        sampler="grid", space={"curve.quality": qualities},
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )  # fmt: skip
    assert [p["curve.quality"] for p in study.plan.grid()] == qualities  # run in this order
    result = study.run()
    status = {t.params["curve.quality"]: t for t in result.trials}
    for q in (0.1, 0.2, 0.15, 0.05, 0.3):  # worse than the median curve from step 0
        assert status[q].status == "pruned", q
        assert status[q].pruned_step == 0
        assert status[q].intermediate == {0: pytest.approx(q * 0.2)}
    for q in (0.9, 0.8, 0.85, 0.95, 0.88, 0.92, 0.87):
        assert status[q].status in ("ok", "pruned")
    assert status[0.95].status == "ok" and len(status[0.95].intermediate) == 10
    stopped = {q: step for q, step in Curve.seen_steps}
    assert stopped[0.05] == 0 and stopped[0.95] == 9  # pruned trials really stopped early
    assert result.best_params == {"curve.quality": 0.95}


def test_percentile_pruner_string(unit_data):
    study = Study(
        Curve(), data=unit_data, metric=predicted_value, sampler="random", seed=0,
        n_trials=20, pruner="percentile:50",
    )  # fmt: skip
    result = study.run()
    assert result.counts["pruned"] > 0
    assert result.counts["ok"] + result.counts["pruned"] == 20


def test_report_is_a_no_op_outside_a_study(unit_data):
    x, y = unit_data
    assert Graph.somatize(Curve()).fit(x, y).states["curve"] == pytest.approx(0.5 * (1 - 0.8**10))
    report(1.0, 0)  # nothing to report to


def test_pruned_raised_by_hand_is_a_pruned_trial(unit_data):
    from soma import Filter

    class Quitter(Filter):
        def forward(self, x, state):
            raise Pruned(3, 0.5)

    result = Study(Quitter(), data=unit_data, metric=predicted_value, n_trials=2).run()
    assert result.counts["pruned"] == 2 and result.best_trial is None  # pruned is no failure
    assert result.trials[0].pruned_step == 3 and result.trials[0].error is None


def test_shared_cache_reuses_the_upstream_prefix(regression_data):
    Scale.fits = 0
    cache = Cache()
    study = Study(
        Scale() >> Ridge(), data=regression_data, metric="mse", sampler="grid",
        space={"scale.center": True, "ridge.alpha": [0.01, 0.1, 1.0, 10.0]}, cache=cache,
    )  # fmt: skip
    result = study.run()
    assert Scale.fits == 1  # four trials, one fit of the shared prefix
    assert result.cache_hits > 0 and 0 < result.cache_hit_rate < 1
    first, *rest = sorted(result.trials, key=lambda t: t.number)
    assert first.cache_hits == 0
    assert all(t.cache_hits >= 2 for t in rest)  # scale's state and its outputs
    assert all("fit/scale" in t.cache_keys or "forward/scale" in t.cache_keys for t in rest)
    assert cache.stats().hits >= result.cache_hits


def test_reports_reach_their_own_trial_from_threads(unit_data):
    """Trials run in parallel (n_jobs) and the reporting node in a runtime worker thread
    (a fork): each trial's learning curve is its own."""
    from soma import Filter

    class Other(Filter):
        def forward(self, x, state):
            return x

    class First(Filter):
        def forward(self, curve, other, state):
            return curve

    g = Graph.somatize((Curve() | Other()) >> First(), max_workers=2)
    result = Study(
        g, data=unit_data, metric=predicted_value, sampler="random", seed=0, n_trials=8,
        n_jobs=2,
    ).run()  # fmt: skip
    assert result.counts["ok"] == 8, result.errors
    for t in result.trials:
        q = t.params["curve.quality"]
        assert t.intermediate == {s: pytest.approx(q * (1 - 0.8 ** (s + 1))) for s in range(10)}, (
            t.number
        )


@pytest.mark.parametrize("pruner", ["median", "percentile"])
def test_pruner_by_name_prunes_the_worse_learning_curves_over_seeds(unit_data, pruner):
    for seed in range(4):
        Curve.seen_steps.clear()
        result = Study(
            Curve(), data=unit_data, metric=predicted_value, direction="maximize",
            sampler="random", seed=seed, n_trials=30, pruner=pruner,
        ).run()  # fmt: skip
        quality = {t.number: t.params["curve.quality"] for t in result.trials}
        pruned = [t for t in result.trials if t.status == "pruned"]
        done = [t for t in result.trials if t.status == "ok"]
        assert len(pruned) >= 5 and len(done) >= 5, (seed, result.counts)
        # the best curve is never cut short, and the cut ones are the worse ones
        assert max(quality.values()) == result.best_params["curve.quality"]
        gap = np.mean([quality[t.number] for t in done]) - np.mean(
            [quality[t.number] for t in pruned]
        )
        assert gap > 0.2, (seed, gap)
        stopped = dict(Curve.seen_steps)
        for t in pruned:  # training really stopped where the pruner said
            assert stopped[quality[t.number]] == t.pruned_step < Curve.steps - 1


def test_iterative_filter_reports_each_epoch_and_is_pruned(unit_data):
    LossCurve._trained.clear()
    result = Study(
        LossCurve(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler="random", seed=1, n_trials=20, pruner="median",
    ).run()  # fmt: skip
    assert result.counts["pruned"] >= 4 and result.counts["ok"] >= 4
    for t in result.trials:
        q = t.params["loss_curve.quality"]
        steps = LossCurve._trained[q]
        expected = {s: pytest.approx((1 - q) + 0.7 ** (s + 1)) for s in range(steps)}
        assert t.intermediate == expected  # monitor() after every epoch
        if t.status == "ok":
            assert steps == LossCurve.epochs
        else:
            assert t.status == "pruned" and steps == t.pruned_step + 1 < LossCurve.epochs
