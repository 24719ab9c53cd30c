"""Issue 18, items 1-2: hostile user code over MCP stdio cannot take the server down.

Filters that call ``sys.exit``, ``os._exit``, raise ``KeyboardInterrupt`` or a custom
``BaseException``, crash the interpreter, loop forever, allocate 2 GB or print to stdout; a
filter file whose import hangs; a data loader that exits. Each call gives a clear error
naming the node (or file, or loader), and the next call on the same server succeeds. A
cancelled call stops the worker running it and closes its experiment as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

import psutil
import pytest

BASELINE = "StandardScale() >> LogReg(C=1.0)"

HOSTILE = '''
import ctypes
import os
import sys
import time

import numpy as np

from soma import Filter


class CustomStop(BaseException):
    """Not an Exception: escapes `except Exception`."""


class _Fits(Filter):
    def forward(self, x, state=None):
        return x


class ExitFit(_Fits):
    def fit(self, x, y=None):
        sys.exit(3)


class HardExit(_Fits):
    def fit(self, x, y=None):
        os._exit(9)


class Interrupt(_Fits):
    def fit(self, x, y=None):
        raise KeyboardInterrupt


class Custom(_Fits):
    def fit(self, x, y=None):
        raise CustomStop("stop here")


class Crash(_Fits):
    def fit(self, x, y=None):
        ctypes.string_at(0)  # reads address 0: SIGSEGV


class Spin(_Fits):
    def fit(self, x, y=None):
        with open(os.environ.get("SOMA_TEST_PIDFILE", "spin.pid"), "w") as f:
            f.write(str(os.getpid()))
        while True:
            pass


class Hog(_Fits):
    def fit(self, x, y=None):
        block = np.ones(2 * 2**30 // 8)  # 2 GB, every page touched
        return float(block.sum())


class Chatty(_Fits):
    """Prints to stdout, which in an MCP stdio server is the protocol stream."""

    def fit(self, x, y=None):
        for i in range(200):
            print("{\\"jsonrpc\\": \\"2.0\\", \\"id\\": 999, \\"result\\": " + str(i) + "}")
        sys.stdout.flush()
        return None
'''

HANGING_IMPORT = """
import time
while True:  # module level: importing this file never ends
    time.sleep(0.05)
"""

LOADER_GUARD = """

_real_load = load


def load():
    import pathlib
    import sys

    if (pathlib.Path(__file__).parent / "exit.flag").exists():
        sys.exit("the loader refuses")
    return _real_load()
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> Any:
    project = kit.make_project(tmp_path_factory.mktemp("hostile") / "digits")
    (project / "filters" / "hostile.py").write_text(HOSTILE)
    with open(project / "data.py", "a") as f:
        f.write(LOADER_GUARD)
    with open(project / "soma.toml", "a") as f:
        f.write("\n[limits]\nimport_timeout_s = 10\nworkers = 1\n")
    os.environ["SOMA_TEST_PIDFILE"] = str(project / "spin.pid")
    harness = kit.SessionHarness(kit.stdio_session(project)).start()
    harness.project = project
    try:
        yield harness
    finally:
        harness.close()
        os.environ.pop("SOMA_TEST_PIDFILE", None)


def _run(h: Any, spec: str, **extra: Any) -> Any:
    return h.call("run_pipeline", {"spec": spec, **extra})


def _ok_after(h: Any) -> None:
    """The same server answers the next call, and runs a pipeline."""
    after = _run(h, BASELINE)
    assert not after.is_error, h.text(after)
    assert after.structured_content["value"] > 0.8


@pytest.mark.parametrize(
    ("spec", "node", "says"),
    [
        ("ExitFit() >> LogReg()", "exit_fit", "SystemExit(3)"),
        ("Interrupt() >> LogReg()", "interrupt", "KeyboardInterrupt"),
        ("Custom() >> LogReg()", "custom", "CustomStop('stop here')"),
        ("HardExit() >> LogReg()", "hard_exit", "exited with code 9"),
        # Each kills the worker (a fresh one loads the data: seconds): os._exit runs in the
        # quick suite, the segfault with the slow tests.
        pytest.param("Crash() >> LogReg()", "crash", "SIGSEGV", marks=pytest.mark.slow),
    ],
)
def test_exits_and_crashes_are_errors_naming_the_node(
    hostile: Any, spec: str, node: str, says: str
) -> None:
    result = _run(hostile, spec)
    assert result.is_error
    text = hostile.text(result)
    assert f"node {node!r} failed during fit" in text, text
    assert says in text, text
    assert "Recorded as failed experiment" in text
    # User frames only, or none: Soma's own (the worker, the tool layer) are never shown.
    assert "/soma/" not in text and "/soma_tools/" not in text, text
    _ok_after(hostile)


def test_endless_fit_is_stopped_by_the_call_timeout(hostile: Any) -> None:
    started = time.monotonic()
    result = _run(hostile, "Spin() >> LogReg()", timeout_s=1.5)
    assert result.is_error
    text = hostile.text(result)
    assert "node 'spin' failed during fit" in text and "time limit of 1.5 s" in text, text
    assert time.monotonic() - started < 30
    pid = int((hostile.project / "spin.pid").read_text())
    _gone(pid)
    _ok_after(hostile)


@pytest.mark.slow  # the worker is killed; tests/isolation/test_process_backend.py is quicker
def test_two_gigabytes_under_a_memory_limit(hostile: Any) -> None:
    result = _run(hostile, "Hog() >> LogReg()", memory_mb=700)
    assert result.is_error
    text = hostile.text(result)
    assert "node 'hog' failed during fit" in text and "memory limit of 700 MB" in text, text
    _ok_after(hostile)


def test_prints_to_stdout_do_not_corrupt_the_protocol(hostile: Any) -> None:
    result = _run(hostile, "Chatty() >> LogReg()")
    assert not result.is_error, hostile.text(result)
    _ok_after(hostile)


def test_a_loader_that_exits_is_named_and_the_next_call_works(hostile: Any) -> None:
    flag = hostile.project / "exit.flag"
    flag.write_text("")
    try:
        # Data is loaded once per worker: a fresh worker (after a crash) loads it again.
        _run(hostile, "HardExit() >> LogReg()")
        result = _run(hostile, BASELINE)
    finally:
        flag.unlink()
    assert result.is_error
    text = hostile.text(result)
    assert "node 'data'" in text and "the loader refuses" in text, text
    _ok_after(hostile)


def test_a_hanging_import_is_reported_and_later_listings_do_not_hang(hostile: Any) -> None:
    (hostile.project / "filters" / "stuck.py").write_text(HANGING_IMPORT)
    try:
        started = time.monotonic()
        listed = hostile.call("list_filters", {})
        assert not listed.is_error, hostile.text(listed)
        assert time.monotonic() - started < 60
        errors = listed.structured_content["errors"]
        assert "filters/stuck.py" in errors and "did not finish within 10 s" in str(errors)
        assert "ExitFit" in {f["name"] for f in listed.structured_content["filters"]}
        started = time.monotonic()
        again = hostile.call("list_filters", {})
        assert not again.is_error and time.monotonic() - started < 5
        _ok_after(hostile)
    finally:
        (hostile.project / "filters" / "stuck.py").unlink()


def test_a_cancelled_call_kills_its_worker_and_closes_the_experiment(hostile: Any) -> None:
    pidfile = hostile.project / "spin.pid"
    pidfile.unlink(missing_ok=True)

    async def call_then_cancel() -> None:
        task = asyncio.ensure_future(
            hostile.session.call_tool("run_pipeline", {"spec": "Spin() >> LogReg()"})
        )
        deadline = time.monotonic() + 60
        while not pidfile.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        task.cancel()  # the client sends notifications/cancelled
        with contextlib.suppress(asyncio.CancelledError):
            await task

    hostile.run(call_then_cancel())
    _gone(int(pidfile.read_text()))
    from soma.knowledge import KnowledgeBase

    kb = KnowledgeBase(hostile.project / ".soma" / "kb.sqlite", embedder="hashing")
    try:
        deadline = time.monotonic() + 30
        while True:
            spins = [e for e in kb.experiments() if "Spin" in (e.pipeline_summary or "")]
            if (spins and all(e.status != "running" for e in spins)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert spins and all(e.status == "failed" for e in spins)
        assert "cancelled" in (spins[-1].error or "")
    finally:
        kb.close()
    _ok_after(hostile)


def _gone(pid: int, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} is still running")
