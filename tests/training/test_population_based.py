"""PopulationBased: today's PBT reached as a strategy; binary tournament exploit."""

from __future__ import annotations

import numpy as np
import pytest

from soma import Graph
from soma.errors import ExecutionError
from soma.pbt._explore import binary_tournament
from soma.training import LinearModel, PopulationBased, perturb, truncation


def _data(n=200):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(n, 2))
    return x, x @ np.array([2.0, -1.0]) + 0.5


@pytest.mark.parametrize(
    ("exploit", "explore"),
    [(truncation(0.5), perturb(0.5, 2.0)), ("binary_tournament", "resample")],
)
def test_population_based_trains_the_node_and_keeps_the_pbt_result(exploit, explore):
    x, y = _data()
    strategy = PopulationBased(
        population_size=4, generations=4, steps=5, exploit=exploit, explore=explore, seed=1
    )
    model = LinearModel(lr=0.05)
    graph = Graph.somatize(model, strategy=strategy).fit(x, y)
    result = strategy.results["linear_model"]
    assert len(result.population) == 4 and len(result.rounds) == 4
    best = result.population[0]
    assert graph.states["linear_model"] is best.state
    # 20 steps at the best lr found beat 20 steps at the start value of lr.
    start = LinearModel(lr=0.05, epochs=20)
    assert model.loss_value(x, y, best.state) < start.loss_value(x, y, start.fit(x, y))
    assert "population of 4" in graph.to_text()


def test_a_failing_member_fails_the_fit():
    class Nan(LinearModel):
        def partial_fit(self, x, y, state, steps):
            if self.lr > 0.2:
                raise FloatingPointError("diverged")
            return super().partial_fit(x, y, state, steps)

    x, y = _data()
    strategy = PopulationBased(population_size=6, generations=2, seed=0)
    with pytest.raises(ExecutionError, match=r"member\(s\) of node 'nan' failed"):
        Graph.somatize(Nan(lr=0.1), strategy=strategy).fit(x, y)


def test_binary_tournament_losers_copy_their_rivals():
    rng = np.random.default_rng(0)
    scores = {0: 1.0, 1: 2.0, 2: None, 3: 0.5}
    donors = binary_tournament(scores, "minimize", rng)
    assert 2 in donors and donors[2] != 2 and scores[donors[2]] is not None
    for loser, winner in donors.items():
        assert scores[winner] is not None
        assert scores[loser] is None or scores[winner] < scores[loser]
    assert 3 not in donors  # the best never copies
