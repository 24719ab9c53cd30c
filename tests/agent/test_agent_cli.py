"""``soma agent ...`` through the real command line (typer's runner, in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soma.cli import _register, app

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


def test_missing_api_key_is_named(digits_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    planner = "anthropic:claude-haiku-4-5"
    code, out = soma("agent", "run", "goal", "--project", str(digits_project),
                     "--planner", planner, "--embedder", "hashing")  # fmt: skip
    assert code == 1 and "ANTHROPIC_API_KEY" in out
