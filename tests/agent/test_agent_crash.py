"""Crash safety: SIGKILL the agent in the middle of an experiment, then resume it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from soma.knowledge import KnowledgeBase
from soma.knowledge._leases import is_interrupted
from soma_agent.run_control import run_status

CLI = "from soma.cli import main; main()"


def soma(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


@pytest.mark.slow
def test_kill_during_experiment_then_resume(slow_project: Path) -> None:
    kb = KnowledgeBase(slow_project / ".soma" / "kb.sqlite", embedder="hashing")
    log = (slow_project / "agent.log").open("wb")
    proc = subprocess.Popen(
        soma(
            "agent",
            "run",
            "maximize validation accuracy",
            "--max-experiments",
            "4",
            "--embedder",
            "hashing",
            "--patience",
            "0",
            cwd=slow_project,
        ),
        cwd=slow_project,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        run_id = None
        deadline = time.monotonic() + 90
        # Wait until the second experiment is running (the first one is complete by then).
        while time.monotonic() < deadline and proc.poll() is None:
            runs = kb.journal_runs()
            if runs:
                run_id = runs[0]
                started = kb.journal(run_id, kinds="experiment_started")
                results = kb.journal(run_id, kinds="experiment_result")
                if len(started) == 2 and len(results) == 1:
                    time.sleep(0.4)  # inside SlowLogReg.fit (1.2 s)
                    break
            time.sleep(0.05)
        assert run_id is not None and proc.poll() is None, (slow_project / "agent.log").read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    killed = kb.journal(run_id, kinds="experiment_started")[-1].payload
    assert run_status(kb, run_id).status == "interrupted"
    assert len(kb.journal(run_id, kinds="experiment_result")) == 1
    # The killed experiment's owner is gone: reading it closes it as interrupted (issue 18).
    left = [e for e in kb.experiments() if e.status != "ok"]
    assert [e.idempotency_key for e in left] == [killed["idempotency_key"]]
    assert is_interrupted(left[0]), left[0].error

    out = subprocess.run(
        soma("agent", "resume", run_id, "--embedder", "hashing", "--json", cwd=slow_project),
        cwd=slow_project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert result["status"] == "completed" and result["n_experiments"] == 4

    experiments = kb.experiments()
    assert len(experiments) == 4  # nothing lost, nothing twice
    assert all(e.status == "ok" for e in experiments)
    keys = Counter(e.idempotency_key for e in experiments)
    assert set(keys.values()) == {1} and killed["idempotency_key"] in keys
    # The interrupted experiment's record was taken over, not duplicated.
    assert left[0].id in {e.id for e in experiments}
    results = kb.journal(run_id, kinds="experiment_result")
    assert len(results) == 4
    assert Counter(r.payload["hypothesis_id"] for r in results).most_common(1)[0][1] == 1
    starts = kb.journal(run_id, kinds="run_started")
    assert len(starts) == 2 and starts[1].payload["resumed"] is True
    assert run_status(kb, run_id).status == "completed"

    again = subprocess.run(
        soma("agent", "resume", run_id, "--embedder", "hashing", cwd=slow_project),
        cwd=slow_project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "already finished" in again.stderr
