"""Fit and forward: one walk, plain fan-in values, leaves, errors, threads, events."""

from __future__ import annotations

import contextvars
import threading
import time
import traceback

import pytest
from runtime_filters import CALLS, Add, Center, Gather, Keyed, Mul, Pair

from soma import ExecutionError, Filter, Graph, GraphError, ValidationError
from soma.events import EVENT_KINDS, Event


def run_with_timeout(fn, seconds: float = 20.0):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not finish."""
    box: dict[str, object] = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the run hung"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


class RecordY(Filter):
    def fit(self, x, y=None):
        return y

    def forward(self, x, state):
        return x


def test_fit_sees_upstream_forward_outputs_and_y_reaches_every_fit():
    g = Graph.somatize(Center() >> Center() >> RecordY())
    g.fit([1.0, 2.0, 6.0], y="labels")
    # The second Center was fitted on the first one's output (mean 0), not on the raw input.
    assert g.states == {"center": 3.0, "center_2": 0.0, "record_y": "labels"}
    assert g.forward([4.0]) == [1.0]
    assert g.last_run.phase == "forward"


def test_fit_returns_self_and_skips_the_unused_leaf_forward():
    g = Graph.somatize(Center() >> Center())
    assert g.fit([1.0, 3.0]) is g
    assert CALLS["Center.forward"] == 1  # only the inner node's output was needed
    CALLS.clear()
    assert g.fit_forward([1.0, 3.0]) == [-1.0, 1.0]
    assert CALLS["Center.forward"] == 2


def test_forward_before_fit():
    g = Graph.somatize(Center() >> Add())
    with pytest.raises(GraphError, match="forward before fit: node 'center'"):
        g.forward([1.0])
    assert Graph.somatize(Add() >> Mul()).forward(1.0) == 4.0  # stateless: no fit needed


def test_fan_in_receives_plain_values():
    assert Graph.somatize((Add() | Mul()) >> Pair()).forward(10.0) == (11.0, 20.0)
    keyed = Graph.somatize((Add() | Mul() | Add(amount=5.0)) >> Keyed()).forward(10.0)
    assert keyed == {"add": 11.0, "mul": 20.0, "add_2": 15.0}
    assert list(keyed) == ["add", "mul", "add_2"]  # connect order
    assert Graph.somatize((Add() | Mul()) >> Gather()).forward(10.0) == [11.0, 20.0]


def test_fan_in_order_follows_connect_order():
    g = Graph()
    a, m, p = g.node(Add()), g.node(Mul()), g.node(Pair())
    g.connect(m, p)
    g.connect(a, p)
    assert g.forward(10.0) == (20.0, 11.0)


def test_multi_input_fit_receives_each_input_and_y():
    class Diff(Filter):
        def fit(self, left, right, y=None):
            return (left - right, y)

        def forward(self, left, right, state):
            return state

    g = Graph.somatize((Add() | Mul()) >> Diff())
    g.fit(10.0, y=7)
    assert g.states["diff"] == (-9.0, 7)


def test_forward_returns_every_leaf_by_name():
    out = Graph.somatize(Add() >> (Mul() | Add(amount=3.0))).forward(1.0)
    assert out == {"mul": 4.0, "add_2": 5.0}


def test_failing_filter_names_node_and_phase_with_cause():
    class Boom(Filter):
        def fit(self, x, y=None):
            raise ZeroDivisionError("fit broke")

        def forward(self, x, state):
            return x

    g = Graph.somatize(Add() >> Boom())
    with pytest.raises(ExecutionError) as info:
        g.fit(1.0)
    assert info.value.node == "boom" and info.value.phase == "fit"
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert info.value.__cause__.__traceback__ is not None
    assert g.last_run.ok is False and g.last_run.nodes["boom"].status == "failed"


def test_failing_parallel_branch_surfaces_its_error_without_hanging():
    class Slow(Filter):
        def forward(self, x, state):
            time.sleep(0.05)
            return x

    class Boom(Filter):
        def forward(self, x, state):
            raise RuntimeError("branch exploded")

    g = Graph.somatize(Add() >> (Slow() | Boom() | Slow() | Slow()) >> Gather(), max_workers=3)
    with pytest.raises(ExecutionError, match="branch exploded") as info:
        run_with_timeout(lambda: g.forward(1.0))
    assert info.value.node == "boom"
    assert g.last_run.nodes["gather"].status == "not_run"


def test_nested_parallel_with_one_worker_thread_does_not_deadlock():
    inner = (Add() | Mul()) >> Gather()
    expr = Add() >> ((inner | (Mul() | Add()) >> Gather()) >> Gather())
    for workers in (1, 2, 3):
        g = Graph.somatize(expr, max_workers=workers)
        assert run_with_timeout(lambda g=g: g.forward(0.0)) == [[2.0, 2.0], [2.0, 2.0]]


def test_parallel_branches_run_concurrently_and_see_context_variables():
    request = contextvars.ContextVar("request", default="unset")
    seen: dict[str, tuple[str, str]] = {}
    barrier = threading.Barrier(3, timeout=10)

    class Meet(Filter):
        tag = "x"

        def forward(self, x, state):
            barrier.wait()  # only passes if three branches run at the same time
            seen[self.tag] = (request.get(), threading.current_thread().name)
            return x

    g = Graph.somatize(Meet(tag="a") | Meet(tag="b") | Meet(tag="c"), max_workers=3)
    request.set("from-caller")
    g.forward(1)  # the barrier times out (BrokenBarrierError) instead of hanging
    assert {v[0] for v in seen.values()} == {"from-caller"}
    assert len({v[1] for v in seen.values()}) == 3


def test_max_workers_is_validated():
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValidationError, match="max_workers"):
            Graph(max_workers=bad)  # type: ignore[arg-type]


def test_events_cover_run_and_nodes_and_a_raising_callback_is_ignored(caplog):
    from soma import Cache

    events: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("callback bug")

    g = Graph.somatize(Center() >> Add(), cache=Cache())
    g.on_event(broken)
    g.on_event(events.append)
    g.fit([1.0, 2.0])
    g.fit([1.0, 2.0])
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and events[0].total_nodes == 2
    assert kinds.count("run_finished") == 2
    assert ("node_started", "center") in [(e.kind, e.node) for e in events]
    hits = [e for e in events if e.kind == "node_cache_hit"]
    assert {e.node for e in hits} == {"center", "add"} and all(e.cache_key for e in hits)
    assert all(
        e.duration_s is not None and e.duration_s >= 0 for e in events if "finished" in e.kind
    )
    assert set(kinds) <= set(EVENT_KINDS)
    assert "callback bug" in caplog.text or "raised" in caplog.text

    class Boom(Filter):
        def forward(self, x, state):
            raise ValueError("no")

    failing = Graph.somatize(Add() >> Boom())
    failing.on_event(events.append)
    events.clear()
    with pytest.raises(ExecutionError):
        failing.forward(1.0)
    assert [e.kind for e in events][-2:] == ["node_failed", "run_failed"]


def test_last_run_report():
    from soma import Cache

    g = Graph.somatize(Center() >> Keyed(), cache=Cache())
    assert g.fit_forward([1.0, 3.0]) == [-1.0, 1.0]
    report = g.last_run
    assert report.phase == "fit" and report.ok and report.duration_s > 0
    assert report.cache_hits == 0 and report.cache_misses == 2
    assert set(report.cache_keys) == {"center", "keyed"}
    g.fit_forward([1.0, 3.0])
    assert g.last_run.cache_hits == 2 and g.last_run.cache_misses == 0
    assert g.last_run.run_id != report.run_id
    assert all(len(k) == 64 for k in g.last_run.cache_keys.values())


def test_failing_parallel_branch_keeps_the_original_traceback():
    class Steady(Filter):
        def forward(self, x, state):
            time.sleep(0.02)
            return x

    class Exploding(Filter):
        def forward(self, x, state):
            return explode_here(x)

    g = Graph.somatize((Steady() | Exploding() | Steady()) >> Gather(), max_workers=3)
    with pytest.raises(ExecutionError) as info:
        run_with_timeout(lambda: g.forward(1.0))
    assert info.value.node == "exploding" and info.value.phase == "forward"
    cause = info.value.__cause__
    assert isinstance(cause, KeyError)
    frames = [frame.name for frame in traceback.extract_tb(cause.__traceback__)]
    assert frames[-2:] == ["forward", "explode_here"]  # raised in a worker, not lost there


def explode_here(x):
    raise KeyError("deep inside a branch")


def test_regression_max_workers_set_after_construction_is_validated():
    # Only the constructor checked it: `g.max_workers = 0` or `= -3` was accepted and the
    # run silently used every CPU or ran sequentially.
    g = Graph.somatize(Add() | Mul())
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ValidationError, match="max_workers"):
            g.max_workers = bad  # type: ignore[assignment]
    assert g.max_workers is None
    g.max_workers = 2
    assert g.forward(1.0) == {"add": 2.0, "mul": 2.0}
    with pytest.raises(ValidationError, match="max_workers"):
        Graph.somatize(Add(), max_workers=0)
    from soma.execute import execute

    with pytest.raises(ValidationError, match="max_workers"):
        execute(g.compile(), x=1.0, fitting=False, want_output=True, states={},
                state_keys={}, cache=None, max_workers=-1)  # fmt: skip


def test_raising_callback_in_worker_threads_does_not_break_a_parallel_run(caplog):
    seen: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def broken(event: Event) -> None:
        raise RuntimeError(f"callback bug on {event.kind}")

    def record(event: Event) -> None:
        with lock:
            seen.append((event.kind, event.node))

    class Pause(Filter):
        def forward(self, x, state):
            time.sleep(0.01)
            return x

    g = Graph.somatize(Add() >> (Pause() | Pause() | Pause()) >> Gather(), max_workers=3)
    g.on_event(broken)  # first, so every event meets it before the recorder
    g.on_event(record)
    assert run_with_timeout(lambda: g.forward(1.0)) == [2.0, 2.0, 2.0]
    assert g.last_run.ok
    finished = {node for kind, node in seen if kind == "node_finished"}
    assert finished == {"add", "pause", "pause_2", "pause_3", "gather"}
    assert seen[0] == ("run_started", None) and seen[-1] == ("run_finished", None)
    assert "callback bug on" in caplog.text


def test_regression_a_new_raising_callback_is_always_reported_in_full(caplog):
    # Reported callbacks were remembered by id(); a new callback that got the id of a
    # collected one had its first error logged at debug level only (hidden).
    from soma.events import dispatch

    event = Event("run_started", "run-x", "forward")
    for round_ in range(20):
        caplog.clear()

        def broken(event: Event, round_: int = round_) -> None:
            raise RuntimeError(f"round {round_}")

        dispatch((broken,), event)
        dispatch((broken,), event)  # a second error from the same one: debug only
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and f"round {round_}" in caplog.text
        del broken


def test_regression_a_run_that_fails_outside_any_node_still_ends_with_run_failed():
    # An unhashable input raised CacheError after run_started without a run_failed event
    # (a progress bar waiting for the end stayed open) and without updating last_run.
    from soma import Cache, CacheError

    kinds: list[str] = []
    g = Graph.somatize(Add(), cache=Cache())
    g.on_event(lambda event: kinds.append(event.kind))
    with pytest.raises(CacheError, match="cannot hash the graph input"):
        g.forward(threading.Lock())
    assert kinds == ["run_started", "run_failed"]
    assert g.last_run is not None and not g.last_run.ok
    assert "cannot hash the graph input" in (g.last_run.error or "")
    assert g.last_run.nodes["add"].status == "not_run"
