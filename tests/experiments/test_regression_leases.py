"""Leases, not hopes (issue 18, items 3-4).

Item 3: an experiment was orphaned as ``running`` forever when its process died mid-run.
Item 4: the same idempotency key sent twice at once fitted the pipeline twice (a live first
attempt looked like a dead one).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from soma.experiments import ExperimentRun
from soma.knowledge import Experiment, KnowledgeBase

_CHILD = textwrap.dedent(
    """
    import sys, time
    from soma.experiments import ExperimentRun
    from soma.knowledge import Experiment, KnowledgeBase

    kb = KnowledgeBase(sys.argv[1], embedder="hashing")
    kb.ensure_line("l", metric="mse", direction="minimize")
    for name in ("read", "open"):
        run = ExperimentRun.start(kb, Experiment(name=name, line="l"))
        print(run.id, flush=True)
    time.sleep(120)  # mid-run: killed here
    """
)


def _kb(path: Path) -> KnowledgeBase:
    kb = KnowledgeBase(path, embedder="hashing")
    kb.ensure_line("l", metric="mse", direction="minimize")
    return kb


def test_regression_sigkilled_run_is_closed_interrupted_on_read_and_on_open(tmp_path: Path):
    path = tmp_path / "kb.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        on_read, on_open = child.stdout.readline().strip(), child.stdout.readline().strip()
        kb = _kb(path)
        try:
            # A live owner's records are left alone, on open and on read.
            assert kb.get(on_read).status == "running"
            assert kb.count(status="running") == 2
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            read = kb.get(on_read)  # the same KB instance: closed when read
            assert read.status == "failed" and read.error.startswith("interrupted")
            assert f"pid {child.pid}" in read.error and read.finished is not None
            assert kb.count(status="running") == 1  # count() does not read records
        finally:
            kb.close()
        with _kb(path) as again:  # opening closes every orphan
            assert again.count(status="running") == 0
            assert again.get(on_open).error.startswith("interrupted")
            assert again.query(status="failed", k=5)[0].experiment.status == "failed"
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)


def _set_lease(path: Path, exp_id: str, **values: object) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"UPDATE experiment_leases SET {sets} WHERE experiment_id = ?",
            [*values.values(), exp_id],
        )


def test_regression_owner_identity_reused_pid_and_stale_heartbeat_of_another_host(tmp_path: Path):
    path = tmp_path / "kb.sqlite"
    with _kb(path) as kb:
        live = ExperimentRun.start(kb, Experiment(name="live", line="l"))
        reused = ExperimentRun.start(kb, Experiment(name="reused", line="l"))
        remote_fresh = ExperimentRun.start(kb, Experiment(name="fresh", line="l"))
        remote_stale = ExperimentRun.start(kb, Experiment(name="stale", line="l"))
        for run in (live, reused, remote_fresh, remote_stale):
            assert run._lease is not None
            run._lease.stop()  # no heartbeat overwriting the rows set below
        _set_lease(path, reused.id, proc_start=1.0)  # this pid, but an earlier process
        _set_lease(path, remote_fresh.id, host="elsewhere", heartbeat=time.time())
        _set_lease(path, remote_stale.id, host="elsewhere", heartbeat=time.time() - 3600)
        assert kb.get(live.id).status == "running"
        assert kb.get(reused.id).status == "failed"
        assert kb.get(remote_fresh.id).status == "running"
        stale = kb.get(remote_stale.id)
        assert stale.status == "failed" and "on elsewhere" in stale.error
        live.succeed({"mse": 0.1})  # the owner still closes its own record
        assert kb.get(live.id).status == "ok"


def test_regression_in_flight_key_is_waited_on_and_a_dead_owners_key_is_rerun(tmp_path: Path):
    path = tmp_path / "kb.sqlite"
    with _kb(path) as kb:
        exp = Experiment(name="e", line="l", idempotency_key="k")
        first = ExperimentRun.start(kb, exp)
        with pytest.raises(Exception, match="still running"):
            ExperimentRun.start(kb, exp.model_copy(update={"id": None}), wait_s=0.1)
        threading.Timer(0.3, lambda: first.succeed({"mse": 0.2})).start()
        second = ExperimentRun.start(kb, exp.model_copy(update={"id": None}), wait_s=10)
        assert second.id == first.id and second.replayed is not None
        assert second.replayed.metrics == {"mse": 0.2}
        # A dead owner's in-flight key is run again, under the same record.
        dead = ExperimentRun.start(kb, Experiment(name="d", line="l", idempotency_key="k2"))
        assert dead._lease is not None
        dead._lease.stop()
        _set_lease(path, dead.id, pid=2**22 + 17, proc_start=1.0)
        rerun = ExperimentRun.start(kb, Experiment(name="d", line="l", idempotency_key="k2"))
        assert rerun.id == dead.id and rerun.replayed is None
        assert kb.get(dead.id).status == "running" and kb.get(dead.id).error is None
        rerun.succeed({"mse": 0.3})
        assert kb.count() == 2
