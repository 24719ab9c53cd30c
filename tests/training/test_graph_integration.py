"""Strategies in the graph: with_strategy, the cache key, the plan views, nodes=."""

from __future__ import annotations

import numpy as np
import pytest
from training_filters import Square, Standardize

from soma import Cache, Graph
from soma.errors import ExecutionError
from soma.training import DataParallel, Federated, LinearModel, Local, ModelParallel


def _data(n=120):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 3)) * 3 + 1
    return x, x @ np.array([0.5, 1.0, -2.0])


def test_nodes_names_what_the_strategy_trains():
    x, y = _data()
    expr = Standardize() >> LinearModel(lr=0.3, epochs=20)
    with pytest.raises(ExecutionError, match=r"node 'standardize'.*does not implement"):
        Graph.somatize(expr, strategy=DataParallel(num_replicas=2)).fit(x, y)
    graph = Graph.somatize(expr).with_strategy(DataParallel(num_replicas=2, nodes=["linear_model"]))
    local = Graph.somatize(expr).fit(x, y)
    graph.fit(x, y)
    np.testing.assert_allclose(graph.forward(x), local.forward(x), rtol=1e-9)
    assert list(graph.strategy.reports) == ["linear_model"]
    text = graph.to_text()
    assert "strategy: DataParallel(nodes=('linear_model',), num_replicas=2)" in text
    lines = {line.split(" (")[0].strip("├└─ "): line for line in text.splitlines()[2:]}
    assert "⇉ 2 replicas" in lines["linear_model"] and "⇉" not in lines["standardize"]
    assert (
        "⇉ 2 replicas" in graph.to_mermaid() and "%% strategy: DataParallel" in graph.to_mermaid()
    )


def test_with_strategy_takes_data_and_keeps_the_original():
    graph = Graph.somatize(Standardize() >> Square())
    copy = graph.with_strategy({"kind": "federated", "num_clients": 2, "rounds": 3})
    assert copy.strategy == Federated(num_clients=2, rounds=3) and graph.strategy == Local()
    assert graph.with_strategy("local").strategy == Local()
    mp = graph.with_strategy(ModelParallel(partitions={"standardize": "a", "square": "b"}))
    assert "⇉ a" in mp.to_text() and "⇉ b" in mp.to_mermaid()


def test_the_strategy_is_part_of_the_cache_key(tmp_path):
    x, y = _data()
    cache = Cache(tmp_path / "cache")
    model = LinearModel(lr=0.3, epochs=10)
    local = Graph.somatize(model, cache=cache)
    local.fit(x, y)
    parallel = local.with_strategy(DataParallel(num_replicas=2))
    parallel.fit(x, y)
    assert parallel.last_run.nodes["linear_model"].status == "ok"  # not Local's entry
    assert "linear_model" in parallel.strategy.reports  # it trained
    again = local.with_strategy(DataParallel(num_replicas=2))
    again.fit(x, y)
    assert again.last_run.nodes["linear_model"].status == "cached"
    other = local.with_strategy(DataParallel(num_replicas=3))
    other.fit(x, y)
    assert other.last_run.nodes["linear_model"].status == "ok"
    local.fit(x, y)
    assert local.last_run.nodes["linear_model"].status == "cached"
