"""Every trial is an experiment in the study's research line; PBT members too."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from study_helpers import Boom, Curve, NoisySGD, Ridge, Scale, mse, predicted_value

from soma import ValidationError
from soma.knowledge import HashingEmbedder, KnowledgeBase
from soma.pbt import PBT
from soma.study import Study


@pytest.fixture
def kb():
    return KnowledgeBase(":memory:", embedder=HashingEmbedder())


def test_each_trial_is_an_experiment_in_the_line(kb, regression_data):
    study = Study(
        Scale() >> Boom() >> Ridge(), data=regression_data, metric="mse", sampler="grid",
        space={"scale.center": True, "ridge.alpha": [0.1, 10.0]}, kb=kb, name="ridge-grid",
    )  # fmt: skip
    result = study.run()
    line = kb.get_line("ridge-grid")
    assert (line.metric, line.direction) == ("mse", "minimize")
    experiments = kb.experiments(line="ridge-grid", origin="study")
    assert len(experiments) == 4 == len(result.trials)
    by_id = {e.id: e for e in experiments}
    for trial in result.trials:
        e = by_id[trial.experiment_id]
        assert e.status == trial.status and e.origin == "study" and e.action == "tune"
        assert e.params["ridge.alpha"] == trial.params["ridge.alpha"]
        assert e.params["boom.fail"] == trial.params["boom.fail"]
        assert e.duration_s == pytest.approx(trial.duration_s)
        assert e.code_fingerprint and e.data_fingerprint
        if trial.status == "ok":
            assert e.metrics == {"mse": pytest.approx(trial.value)} and e.error is None
            assert e.cache_keys == trial.cache_keys and e.cache_keys
        else:
            assert e.metrics == {} and "'boom'" in e.error
    assert kb.best("ridge-grid").id == result.best_trial.experiment_id


def test_a_line_with_another_metric_is_refused(kb, regression_data):
    kb.create_line("digits", metric="accuracy", direction="maximize")
    with pytest.raises(ValidationError, match="measures accuracy") as info:
        Study(Ridge(), data=regression_data, metric="mse", n_trials=1, kb=kb, line="digits")
    assert info.value.field == "line"


def test_pbt_members_are_recorded_with_their_schedule(kb):
    x, y = np.zeros((4, 1)), np.full((4, 5), 10.0)
    result = PBT(
        NoisySGD(), data=(x, y), metric=mse, direction="minimize", population=4, rounds=3,
        steps=2, seed=0, kb=kb, name="sgd-pbt",
    ).run()  # fmt: skip
    experiments = kb.experiments(line="sgd-pbt")
    assert len(experiments) == 4
    best = next(e for e in experiments if e.id == result.best.experiment_id)
    assert "best" in best.tags and "pbt" in best.tags
    assert best.metrics["mse"] == pytest.approx(result.best_value)
    assert best.notes.startswith("PBT schedule: round 0:")
    for step in result.schedule:  # the best schedule, round by round
        assert f"round {step.round}: noisy_sgd.lr={step.params['noisy_sgd.lr']:.4g}" in best.notes
    by_member = {e.id: e for e in experiments}
    assert result.lineage
    for event in result.lineage:  # who copied whom, when
        notes = by_member[result.member(event.member).experiment_id].notes
        assert f"round {event.round}: copied member {event.donor}" in notes


def test_pruned_trials_are_pruned_experiments(kb, unit_data):
    qualities = [0.9, 0.8, 0.85, 0.95, 0.88, 0.1, 0.92, 0.05]
    result = Study(
        Scale() >> Curve(), data=unit_data, metric=predicted_value, direction="maximize",
        sampler="grid", space={"curve.quality": qualities, "scale.center": True},
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5), kb=kb, name="curves",
    ).run()  # fmt: skip
    pruned = [t for t in result.trials if t.status == "pruned"]
    assert {t.params["curve.quality"] for t in pruned} == {0.1, 0.05}
    experiments = {e.id: e for e in kb.experiments(line="curves", status="pruned")}
    assert set(experiments) == {t.experiment_id for t in pruned}
    for t in pruned:
        e = experiments[t.experiment_id]
        assert e.params["curve.quality"] == t.params["curve.quality"]
        assert e.metrics == {} and e.error is None and "pruned" in e.tags
        assert e.notes == "pruned at step 0"
        assert e.duration_s == pytest.approx(t.duration_s) and e.duration_s > 0
        assert e.cache_keys == t.cache_keys and "fit/scale" in e.cache_keys
