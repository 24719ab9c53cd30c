"""soma.execution.ProcessBackend on its own: reuse, errors, limits, cancel, events, futures."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from soma.execution import (
    LimitExceeded,
    Limits,
    ProcessBackend,
    UserExit,
    WorkerCancelled,
    WorkerCrashed,
)
from soma.execution._worker import ask, emit


def double(x: int) -> int:
    return 2 * x


def pid() -> int:
    return os.getpid()


def fails() -> None:
    raise ValueError("bad value")


def exits() -> None:
    sys.exit(3)


def dies() -> None:
    os._exit(7)


def sleeps(seconds: float) -> None:
    time.sleep(seconds)


def grows() -> int:
    block = bytearray(1024 * 2**20)  # 1 GB, every page written
    return len(block)


def talks() -> int:
    emit(("hello", 1))
    return int(ask("how many?")) + 1


@pytest.fixture
def backend() -> ProcessBackend:
    b = ProcessBackend(1)
    yield b
    b.shutdown()


def test_a_worker_is_reused_and_survives_errors(backend: ProcessBackend) -> None:
    first = backend.call(pid)
    assert backend.call(double, 21) == 42
    with pytest.raises(ValueError, match="bad value") as err:
        backend.call(fails)
    assert err.value.__soma_frames__[-1].name == "fails"  # the worker's frames came along
    with pytest.raises(UserExit, match=r"SystemExit\(3\)"):
        backend.call(exits)
    assert backend.call(pid) == first and backend.starts == 1


def test_a_dead_worker_is_replaced(backend: ProcessBackend) -> None:
    first = backend.call(pid)
    with pytest.raises(WorkerCrashed, match="exited with code 7"):
        backend.call(dies)
    assert backend.call(pid) != first and backend.starts == 2


def test_limits_kill_the_worker(backend: ProcessBackend) -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"time limit of 0\.5 s") as err:
        backend.call(sleeps, 30, limits=Limits(timeout_s=0.5))
    assert err.value.limit == "timeout_s" and time.monotonic() - started < 10
    with pytest.raises(LimitExceeded, match="memory limit of 200 MB"):
        backend.call(grows, limits=Limits(memory_mb=200))
    assert backend.call(double, 1) == 2


def test_cancel_kills_the_call_and_refuses_the_next(backend: ProcessBackend) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(WorkerCancelled, match="was cancelled"):
        backend.call(sleeps, 30, cancel=cancel)
    starts = backend.starts
    with pytest.raises(WorkerCancelled, match="before it started"):
        backend.call(double, 1, cancel=cancel)
    assert backend.starts == starts  # no worker started for a call already cancelled


def test_events_and_questions_reach_the_caller(backend: ProcessBackend) -> None:
    seen = []
    assert backend.call(talks, on_event=seen.append, on_ask=lambda q: 41) == 42
    assert seen == [("hello", 1)]


def test_submit_is_the_execution_backend_seam(backend: ProcessBackend) -> None:
    assert backend.in_process is False
    assert backend.submit(lambda: 6 * 7).result(60) == 42


def test_limits_are_validated() -> None:
    from soma.errors import ValidationError

    with pytest.raises(ValidationError, match="timeout_s"):
        Limits(timeout_s=0)
    with pytest.raises(ValidationError, match="memory_mb"):
        Limits(memory_mb=True)
