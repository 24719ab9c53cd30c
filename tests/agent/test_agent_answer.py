"""The final answer: same decisions for r2 and mse, the pick scored once on test with an
interval, the runner-up compared by a paired test, change points that name what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_helpers import regression_project

from soma_agent import run_agent
from soma_tools import ToolContext


def _run(folder: Path, metric: str) -> tuple[list[Any], list[Any], str]:
    ctx = ToolContext(regression_project(folder, metric), embedder="hashing")
    goal = f"{'maximize' if metric == 'r2' else 'minimize'} validation {metric}"
    result = run_agent(ctx, goal, max_experiments=9, seed=1, patience=None, tools=ctx)
    specs = [e.payload["spec"] for e in ctx.kb.journal(result.run_id, kinds="hypothesis")]
    verdicts = [e.payload["verdict"] for e in ctx.kb.journal(result.run_id, kinds="verdict")]
    report = Path(result.report_path or "").read_text(encoding="utf-8")
    ctx.close()
    return specs, verdicts, report


def test_mse_and_r2_runs_make_the_same_decisions(tmp_path: Path) -> None:
    specs_r2, verdicts_r2, report = _run(tmp_path / "r2", "r2")
    specs_mse, verdicts_mse, _ = _run(tmp_path / "mse", "mse")
    assert specs_r2 == specs_mse  # the same hypotheses, in the same order
    assert verdicts_r2 == verdicts_mse
    assert len(set(specs_r2)) == len(specs_r2)  # no configuration is run twice
    # The answer: selected on validation, then scored once on the test split, with an
    # interval; the runner-up compared by a paired test; change points say what changed.
    assert "Selected on validation" in report
    assert "Test split (scored once, after selection)" in report
    assert "95% bootstrap interval over 89 test samples" in report
    assert "Runner-up `exp-" in report
    assert "paired_bootstrap on 88 paired validation samples" in report
    assert "Change points of this run" in report
    points = report.split("Change points of this run", 1)[1].split("\n\n")[1]
    assert "params (" in points or "structure (" in points
    assert "code" not in points  # only params or structure changed, never "code"
