"""Streaming execution: fixed, evolving and barrier modes, checkpoints, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from soma import Filter, Graph
from soma.cache import Cache
from soma.data import ArrayChunks, LocalStore, Stream, StreamError
from soma.errors import ExecutionError


class Center(Filter):
    def fit(self, x, y=None):
        return float(np.mean(x))

    def forward(self, x, state):
        return x - state


class Double(Filter):
    def forward(self, x, state):
        return x * 2


class RunningMean(Filter):
    def init_state(self, x, y):
        return (0.0, 0)

    def partial_fit(self, x, y, state, steps):
        return (state[0] + float(np.sum(x)), state[1] + len(x))

    def forward(self, x, state):
        return x - state[0] / state[1]


class Boom(Filter):
    def forward(self, x, state):
        if x[0] >= 20:
            raise RuntimeError("bad chunk")
        return x


def test_fixed_mode_matches_forward_in_memory() -> None:
    data = np.arange(100.0)
    graph = Graph.somatize(Center() >> Double()).fit(data)
    outputs = Stream(graph, ArrayChunks(data, 30)).run()
    assert [len(o) for o in outputs] == [30, 30, 30, 10]
    np.testing.assert_allclose(np.concatenate(outputs), graph.forward(data))


def test_evolving_mode_carries_state_chunk_to_chunk() -> None:
    graph = Graph.somatize(RunningMean())
    stream = Stream(graph, ArrayChunks(np.arange(1.0, 7.0), 2), fit=True)
    outputs = stream.run()
    # means seen so far: 1.5, 2.5, 3.5
    np.testing.assert_allclose(np.concatenate(outputs), [-0.5, 0.5, 0.5, 1.5, 1.5, 2.5])
    assert stream.states["running_mean"] == (21.0, 6)


def test_fitting_a_filter_without_partial_fit_is_an_error_before_any_chunk() -> None:
    read: list[int] = []

    def chunks():
        read.append(1)
        yield np.zeros(3)

    with pytest.raises(StreamError, match=r"'center'.*partial_fit.*barrier"):
        Stream(Graph.somatize(Center()), chunks(), fit=True)
    assert read == []
    with pytest.raises(StreamError, match="not fitted"):
        Stream(Graph.somatize(Center()), [np.zeros(3)])


def test_barrier_buffers_until_the_end_and_runs_once() -> None:
    data = np.arange(10.0)
    graph = Graph.somatize(Double() >> Center())
    stream = Stream(graph, ArrayChunks(data, 3), fit=True, modes={"center": "barrier"})
    assert stream.run() == []  # the only leaf is after the barrier
    np.testing.assert_allclose(stream.result, data * 2 - np.mean(data * 2))
    assert stream.states["center"] == pytest.approx(9.0)


def test_errors_name_the_node_and_chunk() -> None:
    with pytest.raises(ExecutionError, match=r"'boom'.*stream chunk 2"):
        Stream(Graph.somatize(Boom()), ArrayChunks(np.arange(40.0), 10)).run()


def test_per_stream_cache_computes_nothing_twice() -> None:
    calls: list[int] = []

    class Counted(Filter):
        def forward(self, x, state):
            calls.append(len(x))
            return x + 1

    cache = Cache()
    graph = Graph.somatize(Counted())
    first = Stream(graph, ArrayChunks(np.arange(50.0), 10), cache=cache).run()
    second = Stream(graph, ArrayChunks(np.arange(50.0), 10), cache=cache).run()
    assert len(calls) == 5
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))


def test_checkpoint_from_another_graph_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    graph = Graph.somatize(RunningMean())
    chunks = [np.ones(2)] * 4
    stream = Stream(graph, chunks, fit=True, checkpoint=store, checkpoint_every=2)
    iterator = iter(stream)
    for _ in range(3):
        next(iterator)  # the checkpoint after chunk 2 is written
    other = Graph.somatize(RunningMean() >> Double())
    with pytest.raises(StreamError, match="another graph"):
        Stream(other, chunks, fit=True, checkpoint=store).run()


def test_stream_resumes_from_its_checkpoint_after_sigkill(tmp_path: Path) -> None:
    worker = Path(__file__).with_name("_stream_worker.py")
    out, checkpoint = tmp_path / "out.txt", tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, str(worker), str(checkpoint), str(out), "12"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and len(out.read_text().splitlines()) >= 12):
            assert proc.poll() is None, "the worker ended before it was killed"
            assert time.monotonic() < deadline, "the worker did not reach chunk 12"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (checkpoint / "stream.checkpoint.meta.json").is_file()
    subprocess.run(
        [sys.executable, str(worker), str(checkpoint), str(out), "0"],
        env=env,
        check=True,
        timeout=120,
    )
    lines = out.read_text().splitlines()
    resumed = [line for line in lines[12:] if not line.startswith("done")]
    assert resumed[0].startswith("10 ") and resumed[0].endswith("resumed_from=10")
    assert lines[-1] == "done 29"
    # the resumed values equal an uninterrupted run's: the running mean of 0..10*(i+1)-1
    for line in resumed:
        index, value = int(line.split()[0]), float(line.split()[1])
        assert value == pytest.approx((10 * (index + 1) - 1) / 2)
    assert not (checkpoint / "stream.checkpoint.meta.json").exists()  # removed when done


def test_graph_stream_method() -> None:
    data = np.arange(12.0)
    graph = Graph.somatize(Center()).fit(data)
    outputs = list(graph.stream(ArrayChunks(data, 5)))
    np.testing.assert_allclose(np.concatenate(outputs), data - data.mean())
