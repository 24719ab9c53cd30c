"""Branch and Loop nodes inside a stream: per chunk (each chunk takes its own arm, loops
its own number of times), as a barrier, with evolving nodes inside, cached, and the
clear errors for what a stream cannot do with them."""

from __future__ import annotations

import numpy as np
import pytest

from soma import Branch, Filter, Graph, Loop
from soma.cache import Cache
from soma.data import ArrayChunks, Stream, StreamError
from tests.data.test_stream import Center, Double, RunningMean


class Negate(Filter):
    def forward(self, x, state):
        return -x


def _positive(x) -> bool:
    return float(np.mean(x)) > 0


def _graph() -> Graph:
    return Graph.somatize(
        Branch(_positive, then=Double(), otherwise=Negate())
        >> Loop(Double(), until=lambda x: float(np.abs(x).max()) > 50, max_iterations=6)
    )


def _chunks_data() -> np.ndarray:
    return np.concatenate([np.arange(1.0, 5.0), -np.arange(1.0, 5.0), np.arange(10.0, 14.0)])


def test_branch_and_loop_run_per_chunk_like_a_forward_on_each_chunk() -> None:
    data = _chunks_data()
    graph = _graph()
    outputs = graph.stream(ArrayChunks(data, 4)).run()
    expected = [graph.forward(data[i : i + 4]) for i in range(0, len(data), 4)]
    assert len(outputs) == 3
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(got, want)
    # the chunks really took different arms and loop counts
    np.testing.assert_allclose(outputs[1], -data[4:8] * 2**4)  # negated, 4 doublings
    np.testing.assert_allclose(outputs[2], data[8:] * 2 * 2**1)  # doubled, 1 doubling


def test_a_fitted_arm_applies_its_state_per_chunk() -> None:
    data = np.arange(1.0, 13.0)
    graph = Graph.somatize(Branch(_positive, then=Center(), otherwise=Negate())).fit(data)
    outputs = graph.stream(ArrayChunks(data, 4)).run()
    np.testing.assert_allclose(np.concatenate(outputs), data - data.mean())


def test_a_chunk_taking_an_arm_fit_never_took_is_a_clear_error() -> None:
    graph = Graph.somatize(Branch(_positive, then=Negate(), otherwise=Center()))
    graph.fit(np.arange(1.0, 5.0))  # positive: 'otherwise' (Center) never fitted
    with pytest.raises(StreamError, match=r"'center' \(in 'otherwise' of 'branch'\).*chunk 1"):
        graph.stream(ArrayChunks(np.concatenate([np.ones(4), -np.ones(4)]), 4)).run()


def test_evolving_nodes_inside_a_branch_and_a_loop_carry_their_states() -> None:
    data = np.arange(1.0, 9.0)
    graph = Graph.somatize(
        Branch(_positive, then=RunningMean()) >> Loop(RunningMean(), max_iterations=2)
    )
    stream = graph.stream(ArrayChunks(data, 4), fit=True)
    outputs = stream.run()
    assert stream.modes["running_mean"] == "evolving"
    assert stream.states["running_mean"] == (36.0, 8)
    # the Loop body is unrolled: one state per iteration
    assert set(stream.states) == {"running_mean", "running_mean_2@0", "running_mean_2@1"}
    first = data[:4] - data[:4].mean()
    np.testing.assert_allclose(outputs[0], first - first.mean() - 0.0)


def test_a_branch_as_barrier_runs_once_on_every_row() -> None:
    data = np.concatenate([np.arange(1.0, 5.0), -np.arange(1.0, 3.0)])  # mean > 0 overall
    graph = Graph.somatize(Double() >> Branch(_positive, then=Center(), otherwise=Negate()))
    stream = graph.stream(ArrayChunks(data, 2), modes={"branch": "barrier"}, fit=True)
    assert stream.run() == []  # nothing per chunk: the only leaf follows the barrier
    np.testing.assert_allclose(stream.result, data * 2 - (data * 2).mean())
    assert stream.states["center"] == pytest.approx((data * 2).mean())


def test_a_cached_stream_through_control_flow_computes_nothing_twice() -> None:
    data = _chunks_data()
    cache = Cache()
    first = _graph().stream(ArrayChunks(data, 4), cache=cache).run()
    hits = cache.stats().hits
    again = _graph().stream(ArrayChunks(data, 4), cache=cache).run()
    assert cache.stats().hits - hits == 3 + 3 + 4 + 1  # every arm node and loop pass
    for a, b in zip(first, again, strict=True):
        np.testing.assert_allclose(a, b)


def test_modes_a_stream_cannot_give_control_flow_are_clear_errors() -> None:
    graph = _graph()
    with pytest.raises(StreamError, match="'branch' is a Branch and has no state"):
        Stream(graph, [np.ones(2)], modes={"branch": "evolving"})
    with pytest.raises(StreamError, match=r"'double' sits in 'then' of branch 'branch'"):
        Stream(graph, [np.ones(2)], modes={"double": "barrier"})
    with pytest.raises(StreamError, match="no partial_fit"):
        Stream(Graph.somatize(Loop(Center(), max_iterations=2)), [np.ones(2)], fit=True)
