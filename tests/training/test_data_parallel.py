"""DataParallel trains for real: same state as Local, x and y sharded together, errors
name the node and the replica."""

from __future__ import annotations

import os

import numpy as np
import pytest
from training_filters import Boom, Plain, RowFlags

from soma import Graph
from soma.errors import ExecutionError
from soma.pbt import IterativeFilter
from soma.training import DataParallel, LinearModel, TrainingError


def _data(n=600, d=4, seed=0, logistic=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    z = x @ np.linspace(-1.0, 2.0, d) + 0.3
    y = (z > 0).astype(float) if logistic else z + 0.05 * rng.normal(size=n)
    return x, y


def _fit(flt, x, y, strategy=None):
    graph = Graph.somatize(flt, strategy=strategy)
    graph.fit(x, y)
    return graph, next(iter(graph.states.values()))


@pytest.mark.parametrize("aggregation", ["allreduce", "parameter_server"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_equals_local_on_the_linear_model(aggregation, loss):
    x, y = _data(logistic=loss == "logistic")
    model = LinearModel(loss=loss, lr=0.5, epochs=40)
    _, local = _fit(model, x, y)
    graph, parallel = _fit(model, x, y, DataParallel(num_replicas=2, aggregation=aggregation))
    np.testing.assert_allclose(parallel["w"], local["w"], rtol=1e-9, atol=1e-12)
    assert parallel["b"] == pytest.approx(local["b"], rel=1e-9, abs=1e-12)
    # It trained: far from the zero start, and the predictions agree too.
    assert np.abs(parallel["w"]).max() > 0.1
    np.testing.assert_allclose(graph.forward(x), Graph.somatize(model).fit(x, y).forward(x))
    report = graph.strategy.reports["linear_model"]
    assert report.rounds == 40 and report.shards == [(0, 300), (300, 300)]
    pids = {int(w.split()[1]) for w in report.workers}
    assert len(pids) == 2 and os.getpid() not in pids  # two other processes


def test_uneven_shards_are_weighted_by_size():
    x, y = _data(n=301)
    model = LinearModel(lr=0.5, epochs=15)
    _, local = _fit(model, x, y)
    graph, parallel = _fit(model, x, y, DataParallel(num_replicas=3))
    assert graph.strategy.reports["linear_model"].shards == [(0, 101), (101, 100), (201, 100)]
    np.testing.assert_allclose(parallel["w"], local["w"], rtol=1e-9)
    # An unweighted mean of the shard updates would not match Local.
    assert graph.strategy.reports["linear_model"].rounds == 15


@pytest.mark.parametrize("aggregation", ["allreduce", "parameter_server"])
def test_y_travels_with_its_rows(aggregation):
    x, _ = _data(n=200)
    y = x[:, 0].copy()  # each label names its row: a replica with other rows' labels fails
    strategy = DataParallel(num_replicas=2, aggregation=aggregation)
    _, state = _fit(RowFlags(epochs=3), x, y, strategy)
    _, local = _fit(RowFlags(epochs=3), x, y)
    np.testing.assert_allclose(state["w"], local["w"], rtol=1e-9)


def test_a_replica_that_raises_names_the_node_and_the_replica():
    x, y = _data(n=100)
    x = x[np.argsort(x[:, 0])]  # the largest first features sit in the last shard
    flt = Boom(threshold=float(x[60, 0]), epochs=2)
    for aggregation in ("allreduce", "parameter_server"):
        graph = Graph.somatize(flt, strategy=DataParallel(num_replicas=2, aggregation=aggregation))
        with pytest.raises(ExecutionError) as info:
            graph.fit(x, y)
        text = str(info.value)
        assert "node 'boom'" in text and "replica 1" in text and "ValueError: bad shard" in text
        assert isinstance(info.value.cause, TrainingError)
    # The pool is still usable afterwards.
    _fit(LinearModel(epochs=2), x, y, DataParallel(num_replicas=2))


def test_an_empty_shard_is_an_error():
    x, y = _data(n=3)
    with pytest.raises(ExecutionError, match="empty shard"):
        _fit(LinearModel(), x, y, DataParallel(num_replicas=4))


def test_x_and_y_of_different_lengths_are_an_error():
    x, y = _data(n=10)
    with pytest.raises(ExecutionError, match="10 input rows but 9 labels"):
        _fit(LinearModel(), x, y[:9], DataParallel(num_replicas=2))


class HalfProtocol(IterativeFilter):
    def init_state(self, x, y=None):
        return 0.0

    def partial_fit(self, x, y, state, steps):
        return state + steps

    def forward(self, x, state):
        return x


@pytest.mark.parametrize(
    ("flt", "aggregation", "missing"),
    [
        (Plain(), "allreduce", "init_state, gradient, apply_gradient"),
        (Plain(), "parameter_server", "init_state, partial_fit, merge"),
        (HalfProtocol(), "parameter_server", "merge"),
        (HalfProtocol(), "allreduce", "gradient, apply_gradient"),
    ],
)
def test_a_filter_without_the_protocol_is_refused_never_fitted_locally(flt, aggregation, missing):
    x, y = _data(n=20)
    graph = Graph.somatize(flt, strategy=DataParallel(num_replicas=2, aggregation=aggregation))
    with pytest.raises(ExecutionError) as info:
        graph.fit(x, y)
    assert f"does not implement {missing} (" in str(info.value)
    assert not graph.is_fitted
