"""ModelParallel: stages on different worker processes, micro-batches pipelined, the same
output as Local; the run report names the worker of every stage."""

from __future__ import annotations

import os

import numpy as np
import pytest
from training_filters import Square, Standardize

from soma import Graph
from soma.training import LinearModel, ModelParallel, TrainingError, pipeline


def _data(n=257):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(n, 3)) * 5 + 2
    return x, x @ np.array([1.0, -1.0, 0.5])


def _pid(placement: str) -> int:
    return int(placement.rsplit("pid ", 1)[1].rstrip(")"))


def test_stages_run_on_different_workers_with_the_same_output_as_local():
    x, y = _data()
    expr = Standardize() >> Square() >> LinearModel(lr=0.2, epochs=30)
    local = Graph.somatize(expr)
    expected = local.fit_forward(x, y)
    strategy = ModelParallel(
        partitions={"standardize": "w0", "square": "w1", "linear_model": "w1"},
        communication=pipeline(micro_batch=50),
    )
    graph = Graph.somatize(expr, strategy=strategy)
    out = graph.fit_forward(x, y)
    np.testing.assert_allclose(out, expected)
    fit_report = graph.last_run
    assert set(fit_report.placement) == {"standardize", "square", "linear_model"}
    # Stage 0 fitted in another process than stage 1, and neither here.
    assert graph.states["standardize"]["pid"] == _pid(fit_report.placement["standardize"])
    pids = {name: _pid(where) for name, where in fit_report.placement.items()}
    assert pids["standardize"] != pids["square"] == pids["linear_model"]
    assert os.getpid() not in pids.values()
    new = np.random.default_rng(5).normal(size=(123, 3))
    np.testing.assert_allclose(graph.forward(new), local.forward(new))
    report = graph.last_run
    assert report.phase == "forward" and report.nodes["square"].runs == 3  # 3 micro-batches
    assert {_pid(w) for w in report.placement.values()} == set(pids.values())
    # A copy with other fitted states reloads its stages; the first graph still serves.
    other = Graph.somatize(expr, strategy=strategy)
    other.fit(x * 2, y)
    assert not np.allclose(other.forward(new), graph.forward(new))
    np.testing.assert_allclose(graph.forward(new), local.forward(new))


def test_partitions_must_place_every_node_of_a_chain():
    x, y = _data(20)
    expr = Standardize() >> LinearModel()
    with pytest.raises(TrainingError, match="no worker for node"):
        Graph.somatize(expr, strategy=ModelParallel(partitions={"standardize": "a"})).fit(x, y)
    bad = ModelParallel(partitions={"standardize": "a", "linear_model": "b", "pca": "c"})
    with pytest.raises(TrainingError, match="unknown node"):
        Graph.somatize(expr, strategy=bad).fit(x, y)
    fork = Graph.somatize(Standardize() >> (Square() | LinearModel()))
    strategy = ModelParallel(partitions={n: "a" for n in fork.nodes})
    with pytest.raises(TrainingError, match="chain graph"):
        fork.with_strategy(strategy).fit(x, y)


def test_forward_before_fit_is_refused():
    strategy = ModelParallel(partitions={"standardize": "a", "linear_model": "b"})
    graph = Graph.somatize(Standardize() >> LinearModel(), strategy=strategy)
    with pytest.raises(Exception, match="fit"):
        graph.forward(np.zeros((2, 3)))
