"""Samplers: TPE against random, grid, conditional spaces, several objectives, threads."""

from __future__ import annotations

import numpy as np
import pytest
from study_helpers import (
    Boom,
    FarQuadratic,
    Nearest,
    Quadratic,
    Ridge,
    Scale,
    predicted_value,
)

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


def test_a_graph_factory_is_searched_like_the_graph(regression_data):
    space = {"ridge.alpha": [0.01, 1.0, 100.0]}
    by_factory = Study(
        lambda: Scale() >> Ridge(), data=regression_data, metric="mse", sampler="grid",
        space=space,
    ).run()  # fmt: skip
    by_graph = Study(
        Graph.somatize(Scale() >> Ridge()), data=regression_data, metric="mse", sampler="grid",
        space=space,
    ).run()  # fmt: skip
    assert by_factory.counts["ok"] == 6
    assert by_factory.best_params == by_graph.best_params
    assert by_factory.best_value == pytest.approx(by_graph.best_value)


def slot_share(sampler: str, seed: int, unit_data) -> float:
    """How often the later trials put the better filter in the slot."""
    result = Study(
        Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler=sampler, n_trials=40, seed=seed, space={"quadratic": [Quadratic, FarQuadratic]},
    ).run()  # fmt: skip
    for t in result.trials:  # each alternative's own parameters, under its own names
        assert set(t.params) == {"quadratic", "quadratic.a", "quadratic.b"}
    late = [t for t in result.trials if t.number >= 20]
    return sum(t.params["quadratic"] == "Quadratic" for t in late) / len(late)


def test_tpe_learns_which_filter_fills_a_slot(unit_data):
    tpe = [slot_share("tpe", seed, unit_data) for seed in range(4)]
    rnd = [slot_share("random", seed, unit_data) for seed in range(4)]
    assert min(tpe) >= 0.75, tpe
    assert np.mean(tpe) >= np.mean(rnd) + 0.2, (tpe, rnd)


def test_pareto_front_is_exactly_the_non_dominated_trials():
    def objective(graph):
        a, b = graph.params["quadratic.a"], graph.params["quadratic.b"]
        return (a - 1.0) ** 2 + b**2, a + b  # minimize the first, maximize the second

    result = Study(
        Quadratic(), objective=objective, metric=["loss", "gain"],
        direction=["minimize", "maximize"], sampler="random", n_trials=30, seed=2,
    ).run()  # fmt: skip
    done = [t for t in result.trials if t.status == "ok"]

    def dominates(p, q):  # p at least as good everywhere and better somewhere
        better_or_equal = p.values[0] <= q.values[0] and p.values[1] >= q.values[1]
        return better_or_equal and p.values != q.values

    expected = {t.number for t in done if not any(dominates(o, t) for o in done)}
    assert {t.number for t in result.pareto_front} == expected
    assert 2 <= len(expected) < len(done)
    assert result.best_trial is None and "Pareto front of" in result.summary()


def test_progress_reports_trial_n_of_n_and_the_best_so_far(unit_data):
    events = []
    result = Study(
        Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
        sampler="random", n_trials=8, seed=0,
    ).run(progress=events.append)  # fmt: skip
    assert [(e.done, e.total) for e in events] == [(n, 8) for n in range(1, 9)]
    values = [e.trial.value for e in events]
    assert [e.best_value for e in events] == [min(values[: n + 1]) for n in range(8)]
    assert events[-1].best_value == result.best_value


def test_a_progress_callback_that_raises_does_not_stop_the_study(unit_data):
    def broken(event):
        raise RuntimeError("display gone")

    result = Study(
        Quadratic(), data=unit_data, metric=predicted_value, sampler="random", n_trials=3,
        seed=0,
    ).run(progress=broken)  # fmt: skip
    assert result.counts["ok"] == 3


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_same_seed_runs_the_same_trials(unit_data, sampler):
    def params(seed):
        result = Study(
            Quadratic(), data=unit_data, metric=predicted_value, direction="minimize",
            sampler=sampler, n_trials=15, seed=seed,
        ).run()  # fmt: skip
        return [t.params for t in result.trials]

    assert params(4) == params(4)
    assert params(4) != params(5)
