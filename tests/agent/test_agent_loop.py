"""The research loop with the built-in planner on the digits example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import kinds

from soma.errors import ValidationError
from soma.project import init_project
from soma_agent import run_agent
from soma_agent.run_control import list_runs, new_run_id, run_status, send_control
from soma_tools import ToolContext

GOAL = "maximize validation accuracy"


def test_loop_improves_journals_and_reports(tools: Any) -> None:
    seen: list[str] = []
    result = run_agent(
        tools,
        GOAL,
        max_experiments=8,
        seed=0,
        tools=tools,
        on_entry=lambda e: seen.append(e["kind"]),
    )
    kb = tools.kb
    assert result.status == "completed"
    assert result.n_experiments == 8
    assert "experiment budget" in result.reason
    journal = kinds(kb, result.run_id)
    assert journal == seen  # the progress callback saw every entry, in order
    assert journal[0] == "run_started" and journal[-1] == "run_finished"
    for kind in (
        "observation",
        "hypothesis",
        "experiment_started",
        "experiment_result",
        "verdict",
        "decision",
        "report",
    ):
        assert kind in journal, kind
    # Every hypothesis is journaled before its experiment starts.
    entries = kb.journal(result.run_id)
    for e in entries:
        if e.kind == "experiment_started":
            hid = e.payload["hypothesis_id"]
            first_h = next(
                x.id for x in entries if x.kind == "hypothesis" and x.payload["id"] == hid
            )
            assert first_h < e.id
    experiments = kb.experiments(run_id=result.run_id, order="started")
    assert len(experiments) == 8
    assert {e.origin for e in experiments} == {"agent"}
    assert all(e.verdict in ("supported", "refuted", "inconclusive") for e in experiments)
    # Verdicts compare with a reference experiment by a paired test on the same validation
    # samples (McNemar for accuracy), rule, inputs and result written into the verdict.
    verdicts = [e.payload for e in kb.journal(result.run_id, kinds="verdict")]
    assert verdicts[0]["reference_id"] is None and verdicts[0]["verdict"] == "inconclusive"
    n_valid = len(tools.splits().valid[1])
    for v in verdicts[1:]:
        assert v["reference_id"].startswith("exp-"), v
        assert v["test"]["rule"] == "mcnemar" and v["test"]["n"] == n_valid, v
        assert 0.0 <= v["test"]["p_value"] <= 1.0 and "p = " in v["reason"]
    values = [e.metrics["accuracy"] for e in experiments]
    assert max(values) > values[0]  # improved over the first draft
    assert result.best_value == pytest.approx(max(values))
    assert {e.action for e in experiments} >= {"draft", "improve"}
    # The report answers the goal with experiment ids next to the numbers.
    report = Path(result.report_path or "").read_text(encoding="utf-8")
    assert result.best_experiment_id in report
    for e in experiments:
        assert e.id in report
    assert f"**{result.best_value:.4f}**" in report
    assert f"Goal: **{GOAL}**" in report and "## Answer" in report
    # Every result the agent's own part quotes sits next to the experiment it comes from.
    own = report.split("\n---\n", 1)[0]
    quoted = [ln for ln in own.splitlines() if re.search(r"\d\.\d{3}", ln)]
    assert len(quoted) >= 9  # the answer and one table row per experiment
    for ln in quoted:
        assert re.search(r"exp-[0-9a-z]+", ln), ln
    summary = run_status(kb, result.run_id)
    assert summary.status == "completed" and summary.n_experiments == 8
    assert [r.run_id for r in list_runs(kb)] == [result.run_id]


def _trace(folder: Path, seed: int) -> list[tuple[Any, float | None]]:
    ctx = ToolContext(init_project(folder, example="digits"), embedder="hashing")
    result = run_agent(ctx, GOAL, max_experiments=7, seed=seed, tools=ctx)
    out = [(e.payload["spec"], None) for e in ctx.kb.journal(result.run_id, kinds="hypothesis")]
    values = [e.payload["value"] for e in ctx.kb.journal(result.run_id, kinds="experiment_result")]
    ctx.close()
    return [(spec, value) for (spec, _), value in zip(out, values, strict=True)]


def test_same_seed_same_run(tmp_path: Path) -> None:
    first = _trace(tmp_path / "a", seed=3)
    second = _trace(tmp_path / "b", seed=3)
    assert first == second
    other = _trace(tmp_path / "c", seed=4)
    assert [s for s, _ in other] != [s for s, _ in first]


def test_run_ids_and_experiments_are_linked(tools: Any) -> None:
    result = run_agent(tools, GOAL, max_experiments=3, tools=tools)
    assert re.fullmatch(r"run-\d{8}-\d{6}-[0-9a-f]{4}", result.run_id)
    hypotheses = [e.payload for e in tools.kb.journal(result.run_id, kinds="hypothesis")]
    for e, h in zip(tools.kb.experiments(run_id=result.run_id), hypotheses, strict=True):
        assert result.run_id in e.tags and f"{result.run_id}:{h['id']}" in e.tags
        assert e.hypothesis == h["statement"] and e.action == h["action"]
        assert e.idempotency_key.startswith(f"{result.run_id}/it")


def test_target_and_plateau_stop(tools: Any) -> None:
    result = run_agent(tools, GOAL, max_experiments=20, target=0.5, tools=tools)
    assert result.n_experiments == 1 and result.reason.startswith("target reached")
    result = run_agent(tools, GOAL, max_experiments=30, patience=2, tools=tools)
    assert result.reason.startswith("plateau") and result.n_experiments < 30


def test_bad_settings_name_the_field(tools: Any) -> None:
    with pytest.raises(ValidationError, match="max_experiments"):
        run_agent(tools, GOAL, max_experiments=0, tools=tools)
    with pytest.raises(ValidationError, match="goal"):
        run_agent(tools, "  ", tools=tools)
    with pytest.raises(ValidationError, match="planner"):
        run_agent(tools, GOAL, planner="gemini:pro", tools=tools)


TUNE = {
    "statement": "Tuning LogReg's C beats its default on scaled pixels.",
    "spec": "StandardScale() >> LogReg()",
    "action": "tune",
    "n_trials": 3,
}


def test_tune_runs_a_study_and_counts_every_trial(tools: Any) -> None:
    run_id = new_run_id()
    send_control(tools.kb, run_id, "inject", hypothesis=TUNE)
    result = run_agent(tools, GOAL, max_experiments=4, run_id=run_id, tools=tools)
    first = tools.kb.journal(run_id, kinds="experiment_result")[0].payload
    assert first["study"] == f"{run_id}-it1" and first["n_recorded"] == 3
    trials = [tools.kb.get(i) for i in first["trial_ids"]]
    assert len(trials) == 3 and {t.run_id for t in trials} == {run_id}
    assert {t.action for t in trials} == {"tune"}
    assert first["value"] == max(t.metrics["accuracy"] for t in trials)
    verdict = tools.kb.journal(run_id, kinds="verdict")[0].payload
    assert verdict["experiment_id"] == first["experiment_id"]
    assert result.n_experiments == 4 and len(tools.kb.experiments(run_id=run_id)) == 4


def test_regression_study_resumed_after_a_kill_runs_only_the_missing_trials(tools: Any) -> None:
    # A run killed during a study had recorded some trials under the iteration's study name;
    # the resumed iteration used to run all n_trials again and count only the new ones.
    from soma_tools import RunStudyInput, run_study

    run_id = new_run_id()
    line = tools.resolve_line(None).name
    run_study(
        tools,
        RunStudyInput(spec=TUNE["spec"], n_trials=2, research_line=line, seed=0,
                      name=f"{run_id}-it1"),
    )  # fmt: skip
    send_control(tools.kb, run_id, "inject", hypothesis=TUNE)
    result = run_agent(tools, GOAL, max_experiments=3, run_id=run_id, tools=tools)
    first = tools.kb.journal(run_id, kinds="experiment_result")[0].payload
    assert first["n_recorded"] == 3 and len(first["trial_ids"]) == 3
    assert len(tools.kb.experiments(line=line)) == 3  # one more trial, nothing else
    assert result.n_experiments == 3 and "experiment budget" in result.reason


def test_iteration_limit_stops_the_run(tools: Any) -> None:
    result = run_agent(tools, GOAL, max_experiments=5, max_iterations=2, patience=None,
                       tools=tools)  # fmt: skip
    assert result.reason == "iteration limit reached (2)" and result.status == "completed"
    assert result.iterations == 2 and result.n_experiments == 2
    decisions = [e.payload for e in tools.kb.journal(result.run_id, kinds="decision")]
    assert decisions[-1] == {"continue": False, "reason": "iteration limit reached (2)"}
