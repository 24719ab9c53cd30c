"""Population-Based Training: beats fixed hyperparameters, copies only valid checkpoints,
stays inside the declared bounds, runs members in processes."""

from __future__ import annotations

import numpy as np
import pytest
from study_helpers import ForgetfulSGD, NoisySGD, PidSGD, Ridge, Scale, mse, train_fixed

from soma import FloatRange, Graph, StudyError, ValidationError
from soma.pbt import PBT, IterativeFilter
from soma.pbt._explore import explore, perturb_value, truncation
from soma.space import Choice, IntRange

X = np.zeros((4, 1))
Y = np.full((4, 20), 100.0)  # the target vector, repeated per row


def run_pbt(seed: int, **kwargs):
    options = {"population": 8, "rounds": 20, "steps": 10, "seed": seed}
    options.update(kwargs)
    return PBT(NoisySGD(), data=(X, Y), metric=mse, direction="minimize", **options).run()


def test_pbt_beats_the_same_population_with_fixed_hyperparameters():
    ratios, annealed = [], 0
    for seed in range(10):
        result = run_pbt(seed)
        fixed = [train_fixed(p["noisy_sgd.lr"], 20 * 10, X, Y) for p in result.initial_params]
        ratios.append(result.best_value / min(fixed))
        lrs = [step.params["noisy_sgd.lr"] for step in result.schedule]
        annealed += np.mean(lrs[-5:]) < np.mean(lrs[:5])
    assert sum(r < 1 for r in ratios) >= 9, ratios
    assert np.median(ratios) < 0.6, ratios
    # ... because it learned to lower the learning rate as training went on
    assert annealed >= 8


def test_lineage_copies_only_from_valid_top_members():
    result = run_pbt(0, rounds=6)
    assert result.lineage
    per_round = {}
    for event in result.lineage:
        per_round.setdefault(event.round, []).append(event)
        assert event.donor != event.member
        assert event.replaced_score is None or event.donor_score <= event.replaced_score
    for events in per_round.values():
        assert len(events) == 2  # ceil(8 * 0.25) at the bottom
        assert not {e.member for e in events} & {e.donor for e in events}
    assert [r.replaced for r in result.rounds] == [2] * 5 + [0]
    assert len(result.population) == 8 and len(result.best.schedule) == 6


def test_failed_members_are_replaced_and_never_donate():
    # lr above 0.05 diverges: members sampled there fail in round 0
    result = run_pbt(1, rounds=4, space={"noisy_sgd.fail_above": 0.05})
    assert result.rounds[0].failed > 0
    failed_round0 = {e.member for e in result.lineage if e.round == 0 and e.replaced_score is None}
    assert len(failed_round0) >= result.rounds[0].failed
    for e in result.lineage:
        assert e.donor_score is not None
        assert e.params_before["noisy_sgd.lr"] <= 0.05  # donors trained fine
    assert result.best_value is not None


def test_a_round_where_every_evaluation_failed_is_an_error():
    with pytest.raises(StudyError, match=r"round 0: every evaluation failed.*diverges"):
        run_pbt(0, rounds=2, space={"noisy_sgd.fail_above": 0.0001})


def test_explore_stays_inside_the_declared_bounds():
    rng = np.random.default_rng(0)
    space = {
        "n.lr": FloatRange(0.01, 0.1, log=True),
        "n.k": IntRange(1, 4),
        "n.kind": Choice(("a", "b", "c")),
        "n.q": FloatRange(0.0, 1.0, step=0.25),
    }
    params = {"n.lr": 0.1, "n.k": 4, "n.kind": "c", "n.q": 1.0}
    for _ in range(300):
        params = explore(params, space, rng, resample_probability=0.2, factors=(0.8, 1.2))
        assert 0.01 <= params["n.lr"] <= 0.1
        assert params["n.k"] in (1, 2, 3, 4)
        assert params["n.kind"] in ("a", "b", "c")
        assert params["n.q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert perturb_value(space["n.lr"], 0.1, 1.2) == 0.1  # clamped
    assert perturb_value(space["n.k"], 1, 1.2) == 2  # small ints still move
    assert perturb_value(space["n.kind"], "a", 0.8) == "a"


def test_truncation_ranks_by_direction_and_skips_failed_donors():
    scores = {0: 1.0, 1: 5.0, 2: None, 3: 3.0, 4: 2.0, 5: 4.0, 6: 0.5, 7: 6.0}
    bottom, top = truncation(scores, "minimize", 0.25)
    assert top == [6, 0] and bottom == [1, 2, 7]
    bottom, top = truncation(scores, "maximize", 0.25)
    assert top == [7, 1] and bottom == [0, 2, 6]


def test_members_run_in_a_process_pool():
    parallel = run_pbt(2, rounds=3, workers=2)
    serial = run_pbt(2, rounds=3, workers=1)
    assert parallel.parallel and parallel.fallback_reason is None
    assert parallel.best_value == pytest.approx(serial.best_value)
    assert [m.id for m in parallel.population] == [m.id for m in serial.population]


class HomeboundMetric:
    """A metric that refuses to be pickled: the pool cannot start."""

    def __call__(self, y_true, y_pred):
        return mse(y_true, y_pred)

    def __reduce__(self):
        raise TypeError("this metric stays home")


def test_process_pool_falls_back_when_the_work_cannot_travel():
    result = PBT(
        NoisySGD(), data=(X, Y), metric=HomeboundMetric(), direction="minimize",
        population=4, rounds=2, seed=0, workers=2,
    ).run()  # fmt: skip
    serial = PBT(
        NoisySGD(), data=(X, Y), metric=mse, direction="minimize", population=4, rounds=2, seed=0
    ).run()  # fmt: skip
    assert not result.parallel
    assert "process pool unavailable" in result.fallback_reason
    assert "stays home" in result.fallback_reason
    assert result.best_value == pytest.approx(serial.best_value)


def test_upstream_nodes_are_fitted_once_and_feed_the_iterative_node(regression_data):
    class SGDRegressor(IterativeFilter):
        lr = FloatRange(1e-3, 0.5, log=True, default=0.01)

        def init_state(self, x, y=None):
            return np.zeros(x.shape[1] + 1)

        def partial_fit(self, x, y, state, steps):
            xb = np.hstack([x, np.ones((len(x), 1))])
            for _ in range(steps):
                state = state - self.lr * 2 * xb.T @ (xb @ state - y) / len(x)
            return state

        def forward(self, x, state):
            return np.hstack([x, np.ones((len(x), 1))]) @ state

    Scale.fits = 0
    g = Graph.somatize(Scale(center=True) >> SGDRegressor())
    result = PBT(
        g, data=regression_data, metric="r2", population=4, rounds=5, steps=20, seed=0
    ).run()
    assert Scale.fits == 1
    assert result.node == "sgd_regressor" and result.best_value > 0.5


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"population": 1}, "population", "expected an int >= 2"),
        ({"rounds": 0}, "rounds", "expected an int >= 1"),
        ({"fraction": 0.7}, "fraction", "(0.0, 0.5]"),
        ({"resample_probability": 2}, "resample_probability", "[0.0, 1.0]"),
        ({"perturb_factors": []}, "perturb_factors", "non-empty list"),
        ({"node": "nope"}, "node", "no node 'nope'"),
        ({"space": {"other.lr": 0.1}}, "space['other.lr']", "changes only 'noisy_sgd'"),
        ({"space": {"noisy_sgd.lr": 2.0}}, "space", "nothing to explore"),
        ({"direction": "minimise"}, "direction", "got 'minimise'"),
    ],
)
def test_bad_pbt_input_names_the_field(kwargs, field, text):
    options = {"data": (X, Y), "metric": mse, "direction": "minimize"}
    options.update(kwargs)
    with pytest.raises(ValidationError) as info:
        PBT(NoisySGD(), **options)
    assert info.value.field == field and text in str(info.value)


def test_pbt_needs_an_iterative_leaf(regression_data):
    with pytest.raises(ValidationError, match="IterativeFilter") as info:
        PBT(Scale() >> Ridge(), data=regression_data, metric="mse")
    assert "found none" in str(info.value)
    g = Graph.somatize(NoisySGD() >> Scale())
    with pytest.raises(ValidationError, match="must be a leaf"):
        PBT(g, data=(X, Y), metric=mse, direction="minimize")


def test_explore_multiplies_by_the_factors_or_resamples_with_probability_p():
    rng = np.random.default_rng(0)
    space = {"n.lr": FloatRange(1e-4, 1e4, log=True)}  # wide: no clamping near 1.0
    draws = 4000
    outcomes = {"x0.8": 0, "x1.2": 0, "resampled": 0}
    for _ in range(draws):
        value = explore({"n.lr": 1.0}, space, rng, resample_probability=0.25, factors=(0.8, 1.2))[
            "n.lr"
        ]
        if value == pytest.approx(0.8, abs=1e-12):
            outcomes["x0.8"] += 1
        elif value == pytest.approx(1.2, abs=1e-12):
            outcomes["x1.2"] += 1
        else:
            assert 1e-4 <= value <= 1e4
            outcomes["resampled"] += 1
    # binomial standard deviations are ~0.007; the margins are over 4 of them
    assert abs(outcomes["resampled"] / draws - 0.25) < 0.03, outcomes
    assert abs(outcomes["x0.8"] / draws - 0.375) < 0.03, outcomes
    assert abs(outcomes["x1.2"] / draws - 0.375) < 0.03, outcomes
    never = explore({"n.lr": 1.0}, space, rng, resample_probability=0.0, factors=(0.8, 1.2))
    always = [
        explore({"n.lr": 1.0}, space, rng, resample_probability=1.0, factors=(0.8, 1.2))["n.lr"]
        for _ in range(50)
    ]
    assert never["n.lr"] in (pytest.approx(0.8), pytest.approx(1.2))
    assert not {0.8, 1.2} & {round(v, 12) for v in always}


def test_exploit_takes_the_donors_params_times_a_factor_clamped_to_the_bounds():
    result = run_pbt(3, rounds=8, resample_probability=0.0)
    assert result.lineage
    for event in result.lineage:
        before = event.params_before["noisy_sgd.lr"]
        after = event.params_after["noisy_sgd.lr"]
        options = [min(max(before * f, 1e-3), 0.5) for f in (0.8, 1.2)]
        assert after == pytest.approx(options[0]) or after == pytest.approx(options[1])
    for member in result.population:
        for step in member.schedule:
            assert 1e-3 <= step.params["noisy_sgd.lr"] <= 0.5


def test_members_really_train_in_worker_processes():
    import os

    result = PBT(
        PidSGD(), data=(X, Y), metric=mse, direction="minimize", population=4, rounds=2,
        steps=2, seed=0, workers=2,
    ).run()  # fmt: skip
    assert result.parallel
    pids = set().union(*(m.state["pids"] for m in result.population))
    assert pids and os.getpid() not in pids


def test_regression_partial_fit_returning_none_is_the_members_error():
    # A None state was taken for a valid checkpoint when the member still scored: exploit
    # then copied it from a donor and crashed on an AssertionError.
    with pytest.raises(StudyError, match=r"every evaluation failed.*partial_fit returned None"):
        PBT(
            ForgetfulSGD(), data=(X, Y), metric=mse, direction="minimize", population=4,
            rounds=3, seed=0,
        ).run()  # fmt: skip
