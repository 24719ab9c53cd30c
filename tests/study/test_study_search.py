"""Samplers: TPE against random, grid, conditional spaces, several objectives, threads."""

from __future__ import annotations

import numpy as np
import pytest
from study_helpers import Boom, Nearest, Quadratic, Ridge, Scale, predicted_value

from soma import Choice, FloatRange, Graph, IntRange
from soma.study import Study

SEEDS = range(5)


def best_of(sampler: str, seed: int, unit_data) -> float:
    study = Study(
        Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler=sampler, n_trials=40, seed=seed,
    )  # fmt: skip
    return study.run().best_value


def test_tpe_beats_random_at_equal_budget(unit_data):
    tpe = [best_of("tpe", seed, unit_data) for seed in SEEDS]
    rnd = [best_of("random", seed, unit_data) for seed in SEEDS]
    wins = sum(t < r for t, r in zip(tpe, rnd, strict=True))
    assert wins >= 4, (tpe, rnd)
    assert np.median(tpe) < 0.5 * np.median(rnd), (tpe, rnd)


def test_grid_runs_exactly_its_grid(regression_data):
    g = Graph.somatize(Scale() >> Ridge())
    space = {"ridge.alpha": [0.01, 1.0, 100.0]}  # scale.center is a declared Choice (2)
    study = Study(g, data=regression_data, metric="mse", sampler="grid", space=space)
    assert study.grid_size == 6
    result = study.run()
    seen = sorted((t.params["scale.center"], t.params["ridge.alpha"]) for t in result.trials)
    assert seen == sorted((c, a) for c in (True, False) for a in (0.01, 1.0, 100.0))
    assert result.counts["ok"] == 6


def test_grid_from_int_and_stepped_float_ranges(unit_data):
    space = {"quadratic.a": FloatRange(0.0, 1.0, step=0.5), "quadratic.b": IntRange(-1, 1)}
    result = Study(
        Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler="grid", space=space, n_trials=100,
    ).run()  # fmt: skip
    points = sorted((t.params["quadratic.a"], t.params["quadratic.b"]) for t in result.trials)
    assert points == [(a, b) for a in (0.0, 0.5, 1.0) for b in (-1, 0, 1)]
    assert result.best_params == {"quadratic.a": 1.0, "quadratic.b": -1}


def test_grid_needs_a_step_on_float_ranges(unit_data):
    with pytest.raises(ValueError, match=r"space\['quadratic.a'\].*no step"):
        Study(Quadratic(), data=unit_data, metric=predicted_value, sampler="grid")


def test_conditional_space_samples_only_the_chosen_filters_params(regression_data):
    g = Graph.somatize(Scale() >> Ridge())
    study = Study(
        g, data=regression_data, metric="mse", sampler="random", n_trials=24, seed=3,
        space={"ridge": [Ridge, Nearest(k=2)], "scale.center": True},
    )  # fmt: skip
    result = study.run()
    labels = {t.params["ridge"] for t in result.trials}
    assert labels == {"Ridge", "Nearest"}
    for t in result.trials:
        keys = set(t.params)
        if t.params["ridge"] == "Ridge":
            assert keys == {"ridge", "ridge.alpha"}
        else:
            assert keys == {"ridge", "ridge.k"}
            assert 1 <= t.params["ridge.k"] <= 9
    ok = [t for t in result.trials if t.status == "ok"]
    assert result.best_value == min(t.value for t in ok)


def test_conditional_grid_is_the_union_of_alternatives(regression_data):
    g = Graph.somatize(Scale() >> Ridge())
    study = Study(
        g, data=regression_data, metric="mse", sampler="grid",
        space={"scale.center": True, "ridge": [Nearest, Boom]},
    )  # fmt: skip
    assert study.grid_size == 9 + 2
    result = study.run()
    configs = sorted(
        (t.params["ridge"], t.params.get("ridge.k", t.params.get("ridge.fail")))
        for t in result.trials
    )
    assert configs == sorted(
        [("Boom", False), ("Boom", True)] + [("Nearest", k) for k in range(1, 10)]
    )
    assert result.counts == {"ok": 9, "pruned": 0, "failed": 2, "running": 0}
    boom = {t.params["ridge.fail"]: t for t in result.trials if t.params["ridge"] == "Boom"}
    assert boom[True].node == "ridge" and "boom: bad configuration" in boom[True].error
    # Boom passes x through: the metric sees 4 columns and says so
    assert boom[False].node is None and boom[False].error.startswith("metric 'mse' raised")


def test_multi_objective_gives_a_pareto_front(regression_data):
    def complexity(y_true, y_pred):
        return float(np.abs(y_pred).mean())

    study = Study(
        Scale() >> Ridge(), data=regression_data, metric=["mse", complexity],
        direction=["minimize", "minimize"], sampler="random", n_trials=12, seed=1,
    )  # fmt: skip
    result = study.run()
    assert result.multi_objective and result.best_trial is None
    front = result.pareto_front
    assert front
    done = [t for t in result.trials if t.status == "ok"]
    for t in front:  # nobody dominates a front member
        assert not any(
            all(o <= v for o, v in zip(other.values, t.values, strict=True))
            and other.values != t.values
            for other in done
        )
    assert set(result.trials[0].metrics) == {"mse", "complexity"}


def test_n_jobs_runs_every_trial_once(unit_data):
    result = Study(
        Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler="random", n_trials=12, n_jobs=3, seed=0,
    ).run()  # fmt: skip
    assert sorted(t.number for t in result.trials) == list(range(12))
    assert result.counts["ok"] == 12


def test_choice_of_non_primitive_values_round_trips(unit_data):
    space = {"quadratic.a": [1.0, 2.0], "quadratic.b": Choice((-0.7, 0.0))}
    result = Study(
        Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler="grid", space=space,
    ).run()  # fmt: skip
    assert result.best_params == {"quadratic.a": 1.0, "quadratic.b": -0.7}


def test_objective_receives_the_trial_graph():
    seen = []

    def objective(graph):
        seen.append(graph.params["quadratic.a"])
        return float(graph.forward(np.zeros((1, 1)))[0])

    result = Study(
        Quadratic(), objective=objective, direction="minimize", sampler="random",
        n_trials=5, seed=0,
    ).run()  # fmt: skip
    assert len(seen) == 5 and result.metric_names == ("objective",)
    assert result.best_params["quadratic.a"] in seen
