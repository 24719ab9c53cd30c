"""The runtime's seams: any cache store, an execution backend, a training strategy, and
the frozen topology the compiler and renderers read."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future

import numpy as np
import pytest

from soma import Cache, CacheStats, Filter, Graph
from soma.cache import CacheStore
from soma.errors import ValidationError
from soma.execution import ExecutionBackend, ThreadBackend
from soma.training import FitCall, Local, TrainingStrategy


class Center(Filter):
    def fit(self, x, y=None):
        return float(np.mean(x))

    def forward(self, x, state):
        return x - state


class Double(Filter):
    def forward(self, x, state):
        return x * 2


class Join(Filter):
    def forward(self, a, b, state):
        return a + b


class DictStore(CacheStore):
    """A whole cache store in a dict: what a plug-in writes."""

    def __init__(self) -> None:
        self.entries: dict[str, object] = {}
        self.hits = self.misses = 0

    def lookup(self, key):
        if key in self.entries:
            self.hits += 1
            return True, self.entries[key], "dict"
        self.misses += 1
        return False, None, None

    def put(self, key, value):
        self.entries[key] = value
        return True

    def __contains__(self, key):
        return key in self.entries

    def clear(self):
        self.entries.clear()

    def stats(self):
        return CacheStats(self.hits, self.misses, len(self.entries), len(self.entries), 0, 0)


def test_a_graph_runs_on_any_cache_store():
    store = DictStore()
    x = np.arange(4.0)
    first = Graph.somatize(Center() >> Double(), cache=store).fit_forward(x)
    graph = Graph.somatize(Center() >> Double(), cache=store)
    assert np.array_equal(graph.fit_forward(x), first)
    assert graph.last_run is not None and graph.last_run.cache_misses == 0
    assert store.hits > 0 and isinstance(Cache(), CacheStore)
    with pytest.raises(ValidationError, match="CacheStore"):
        Graph(cache={})  # type: ignore[arg-type]


class CountingBackend(ExecutionBackend):
    def __init__(self) -> None:
        self.inner = ThreadBackend(2)
        self.calls = 0

    @property
    def max_workers(self) -> int:
        return 2

    def submit(self, node_call):
        self.calls += 1
        return self.inner.submit(node_call)


def test_parallel_branches_run_on_the_graph_backend():
    backend = CountingBackend()
    graph = Graph.somatize((Double() | Center()) >> Join(), backend=backend, max_workers=3)
    out = graph.fit_forward(np.arange(3.0))
    assert np.array_equal(out, np.arange(3.0) * 2 + np.arange(3.0) - 1.0)
    assert backend.calls >= 1
    assert graph.with_params({}).backend is backend  # copies keep it
    backend.inner.shutdown()


def test_the_default_backend_is_the_graphs_own_pool_shared_with_its_copies():
    graph = Graph.somatize(Double() | Center(), max_workers=3)
    assert isinstance(graph.backend, ThreadBackend) and graph.backend.max_workers == 2
    assert graph.with_params({}).backend is graph.backend
    other = Graph.somatize(Double() | Center(), max_workers=3)
    assert other.backend is not graph.backend  # no module-global pool
    graph.max_workers = 5
    assert graph.backend.max_workers == 4


def test_thread_backend_returns_futures_and_checks_its_size():
    with ThreadBackend(1) as backend:
        future = backend.submit(lambda: threading.current_thread().name)
        assert isinstance(future, Future) and future.result().startswith("soma-worker")
    with pytest.raises(ValidationError, match="max_workers"):
        ThreadBackend(0)


class Recording(TrainingStrategy):
    def __init__(self) -> None:
        self.calls: list[FitCall] = []

    def fit(self, call):
        self.calls.append(call)
        return Local().fit(call)


def test_every_fit_goes_through_the_strategy():
    strategy = Recording()
    graph = Graph.somatize(Center() >> Double(), strategy=strategy)
    graph.fit(np.arange(4.0), np.zeros(4))
    assert [c.node for c in strategy.calls] == ["center"]
    assert graph.states["center"] == 1.5 and graph.with_params({}).strategy is strategy
    with pytest.raises(ValidationError, match="strategy"):
        Graph(strategy="local")  # type: ignore[arg-type]


def test_topology_is_frozen_and_follows_changes():
    graph = Graph()
    a = graph.node(Double(), "a")
    before = graph.topology
    assert before is graph.topology  # memoized
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.edges = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        before.filters["x"] = Double()  # type: ignore[index]
    b = graph.node(Double(), "b")
    graph.connect(a, b)
    after = graph.topology
    assert after is not before and after.edges == (("a", "b"),)
    assert after.preds["b"] == ("a",) and list(before.filters) == ["a"]
    assert after.region(None, None) == ["a", "b"]
