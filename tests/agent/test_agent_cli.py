"""``soma agent ...`` through the real command line (typer's runner, in process)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from soma.cli import _register, app
from soma.knowledge import KnowledgeBase

_register()
runner = CliRunner()


def soma(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_run_list_show_and_refused_commands(digits_project: Path) -> None:
    p = str(digits_project)
    code, out = soma("agent", "list", "--project", p)
    assert code == 0 and "No agent runs yet" in out
    code, out = soma("agent", "run", "maximize validation accuracy", "--project", p, "-n", "2",
                     "--embedder", "hashing", "--json")  # fmt: skip
    assert code == 0, out
    result = json.loads(out[out.index("{") :])
    assert result["status"] == "completed" and result["n_experiments"] == 2
    run_id = result["run_id"]
    code, out = soma("agent", "list", "--project", p, "--json")
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == [run_id] and runs[0]["status"] == "completed"
    code, out = soma("agent", "show", run_id, "--project", p)
    assert code == 0 and "experiment_result" in out and "run_finished" in out
    assert result["best_experiment_id"] in out
    code, out = soma("agent", "pause", run_id, "--project", p)
    assert code == 1 and "reads no commands" in out
    code, out = soma("agent", "inject", run_id, "Try it", "--spec", "Scaler() >> LogReg()",
                     "--project", p)  # fmt: skip
    assert code == 1 and "unknown filter 'Scaler'" in out
    code, out = soma("agent", "show", "run-20000101-000000-dead", "--project", p)
    assert code == 1 and "no agent run" in out


def test_run_with_live_progress(digits_project: Path) -> None:
    code, out = soma("agent", "run", "maximize validation accuracy", "--project",
                     str(digits_project), "-n", "2", "--embedder", "hashing")  # fmt: skip
    assert code == 0, out
    assert "iteration 1" in out and "iteration 2" in out and "Report:" in out
    assert "draft" in out and "accuracy" in out
    # Each result line says how it compares with the best so far.
    assert "new best" in out
    assert "Stopping: experiment budget reached (2 of 2)" in out


def test_missing_api_key_is_named(digits_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    planner = "anthropic:claude-haiku-4-5"
    code, out = soma("agent", "run", "goal", "--project", str(digits_project),
                     "--planner", planner, "--embedder", "hashing")  # fmt: skip
    assert code == 1 and "ANTHROPIC_API_KEY" in out


def _wait(kb: Any, run_id: str, kind: str, count: int, proc: Any, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(kb.journal(run_id, kinds=kind)) >= count:
            return
        assert proc.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"no {count} {kind!r}: {log.read_text()}")


@pytest.mark.slow  # a real `soma agent run` process
def test_approve_mode_waits_and_obeys_the_cli_commands(digits_project: Path) -> None:
    # A real `soma agent run --approve` process, steered only by `soma agent ...` commands.
    p = str(digits_project)
    log = digits_project / "agent.log"
    argv = [sys.executable, "-m", "soma.cli", "agent", "run", "maximize validation accuracy",
            "--project", p, "--max-experiments", "3", "--approve", "--planner", "builtin",
            "--budget-usd", "0.5", "--seed", "2", "--embedder", "hashing"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    kb = KnowledgeBase(digits_project / ".soma" / "kb.sqlite", embedder="hashing")
    try:
        deadline = time.monotonic() + 60
        while not kb.journal_runs() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        (run_id,) = kb.journal_runs()
        _wait(kb, run_id, "awaiting_approval", 1, proc, log)
        code, out = soma("agent", "show", run_id, "--project", p)
        assert code == 0 and "awaiting_approval" in out and "awaiting approval:" in out
        time.sleep(0.3)
        assert kb.journal(run_id, kinds="experiment_started") == []  # it waits
        assert soma("agent", "pause", run_id, "--project", p)[0] == 0
        _wait(kb, run_id, "paused", 1, proc, log)
        code, out = soma("agent", "resume", run_id, "--project", p)  # live: a resume command
        assert code == 0 and "resume sent to live run" in out
        _wait(kb, run_id, "resumed", 1, proc, log)
        assert soma("agent", "approve", run_id, "--project", p)[0] == 0
        _wait(kb, run_id, "experiment_result", 1, proc, log)
        _wait(kb, run_id, "awaiting_approval", 2, proc, log)
        code, out = soma("agent", "inject", run_id, "Min-max scaling suits a 3-NN.", "--spec",
                         "MinMaxScale() >> KNN(n_neighbors=3)", "--project", p)  # fmt: skip
        assert code == 0 and "queued" in out
        _wait(kb, run_id, "injected", 1, proc, log)
        assert soma("agent", "veto", run_id, "--project", p)[0] == 0
        _wait(kb, run_id, "experiment_result", 2, proc, log)  # the injected one, unasked
        _wait(kb, run_id, "awaiting_approval", 3, proc, log)
        assert soma("agent", "stop", run_id, "--project", p)[0] == 0
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    started = kb.journal(run_id, kinds="run_started")[0].payload
    assert (started["approve"], started["budget_usd"], started["seed"]) == (True, 0.5, 2)
    assert started["planner"] == "builtin" and started["max_experiments"] == 3
    hypotheses = [e.payload for e in kb.journal(run_id, kinds="hypothesis")]
    assert [h["source"] for h in hypotheses] == ["builtin", "builtin", "human", "builtin"]
    ran = [e.payload["hypothesis_id"] for e in kb.journal(run_id, kinds="experiment_started")]
    assert ran == ["h1", "h3"]  # h2 was vetoed, h4 never approved
    assert {e.payload["by"] for e in kb.journal(run_id, kinds=["paused", "vetoed"])} == {"cli"}
    code, out = soma("agent", "list", "--project", p, "--json")
    assert json.loads(out)[0]["status"] == "stopped"
    text = log.read_text()
    assert "awaiting approval" in text and "vetoed by cli" in text and "Report:" in text
