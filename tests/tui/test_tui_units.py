"""Pure pieces of the TUI: renderings, filters, pipeline trees, the journal fold, form parsing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from soma.knowledge import HashingEmbedder
from soma_tui._experiments import matches_filter, primary_value
from soma_tui._format import format_duration, format_value, sparkline, trend_text
from soma_tui._modals import parse_params
from soma_tui._pipeline_tree import pipeline_nodes
from soma_tui._run_state import RunWatch, entry_text
from soma_tui._runner import AgentLauncher, cli_embedder_name


def _experiment(**fields: object) -> SimpleNamespace:
    base = dict(
        id="exp-1",
        name="pca-16",
        hypothesis="PCA helps",
        pipeline_summary="PCA >> LogReg",
        error=None,
        notes="",
        status="ok",
        action="tune",
        verdict="supported",
        tags=["pca"],
        parent_id="exp-0",
        origin="agent",
        metrics={"accuracy": 0.9},
        primary_metric="accuracy",
    )
    base.update(fields)
    return SimpleNamespace(**base)


def test_sparkline_scales_and_keeps_the_latest_values() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert sparkline([]) == ""
    long = sparkline(list(range(100)), width=10)
    assert len(long) == 10 and long[-1] == "█" and long[0] == "▁"
    assert sparkline([1.0, float("nan"), 2.0]) == "▁█"


def test_trend_arrows_and_number_formats() -> None:
    assert trend_text("improving").plain == "↗"
    assert trend_text("DECLINING").plain == "↘"
    assert trend_text("plateaued").plain == "→"
    assert trend_text("whatever").plain == "·"
    assert format_value(float("nan")) == "—"
    assert format_value(1234.5678) == "1235"
    assert format_duration(3725) == "1h02m"


def test_filter_terms_and_field_filters() -> None:
    e = _experiment()
    assert matches_filter(e, "")
    assert matches_filter(e, "pca LOGREG")
    assert not matches_filter(e, "ridge")
    assert matches_filter(e, "status:ok action:tune verdict:supported tag:pca parent:exp-0")
    assert not matches_filter(e, "status:failed")
    assert not matches_filter(e, "tag:scale")
    assert matches_filter(_experiment(error="ValueError: boom", status="failed"), "boom")


def test_primary_value_falls_back_to_the_single_metric() -> None:
    assert primary_value(_experiment()) == 0.9
    assert primary_value(_experiment(primary_metric=None, metrics={"f1": 0.5})) == 0.5
    assert primary_value(_experiment(metrics={})) is None


def test_pipeline_tree_from_expression_and_json_spec() -> None:
    root = pipeline_nodes("Scale() >> (PCA(n=4) | Identity()) >> Ridge(alpha=0.1)")
    assert root.label == "Chain"
    assert [c.label for c in root.children] == ["Scale()", "Fork", "Ridge(alpha=0.1)"]
    assert [c.label for c in root.children[1].children] == ["PCA(n=4)", "Identity()"]
    spec = {"chain": [{"filter": "Scale"}, {"fork": ["PCA(n=2)", {"filter": "Identity"}]}]}
    root = pipeline_nodes(spec)
    assert [c.label for c in root.children] == ["Scale()", "Fork"]
    assert [c.label for c in root.children[1].children] == ["PCA(n=2)", "Identity()"]
    # Not evaluated: a call to anything stays text.
    assert pipeline_nodes("__import__('os').system('x')").label == "__import__('os').system('x')"


def _entry(entry_id: int, iteration: int, kind: str, **payload: object) -> dict[str, object]:
    return {"id": entry_id, "iteration": iteration, "kind": kind, "payload": payload}


def test_run_watch_reads_incrementally_and_folds_the_protocol() -> None:
    watch = RunWatch(run_id="run-1")
    first = [
        _entry(1, 0, "run_started", goal="g", planner="builtin", max_experiments=5, pid=None),
        _entry(2, 1, "hypothesis", id="h1", statement="try PCA", action="improve"),
        _entry(3, 1, "awaiting_approval", hypothesis_id="h1"),
    ]
    assert len(watch.add(first, check_pid=False)) == 3
    assert watch.awaiting_approval and watch.hypothesis["statement"] == "try PCA"
    assert watch.summary.max_experiments == 5
    # An overlapping read returns nothing new and changes nothing.
    assert watch.add([*first[1:], _entry(4, 1, "paused")], check_pid=False) == [
        _entry(4, 1, "paused")
    ]
    assert watch.paused and watch.live and watch.last_entry_id == 4
    watch.add([_entry(5, 1, "resumed"), _entry(6, 1, "approved", hypothesis_id="h1")])
    assert watch.status == "running" and not watch.awaiting_approval
    watch.add([_entry(7, 1, "decision", **{"continue": False, "reason": "budget"})])
    assert watch.last_decision == "stop: budget"
    watch.add([_entry(8, 2, "run_finished", status="stopped", reason="asked", best_value=0.9)])
    assert not watch.live and watch.summary.best_value == 0.9
    line = entry_text(
        _entry(9, 2, "control", command="inject", by="tui", hypothesis={"statement": "x"})
    ).plain
    assert "control" in line and "inject by tui x" in line


def test_run_watch_notices_a_vanished_agent_process() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone_pid = int(done.stdout)
    watch = RunWatch(run_id="run-1")
    watch.add([_entry(1, 0, "run_started", goal="g", pid=gone_pid)])
    assert watch.status == "interrupted" and not watch.live


def test_parse_params_names_the_field() -> None:
    assert parse_params('{"a.b": 1}') == {"a.b": 1}
    assert parse_params("  ") == {}
    with pytest.raises(ValueError, match="params: expected a JSON object"):
        parse_params("[1, 2]")
    with pytest.raises(ValueError, match="params: expected a JSON object, got invalid JSON"):
        parse_params("{oops")


def test_launcher_builds_the_agent_command(tmp_path) -> None:
    launcher = AgentLauncher(tmp_path, embedder="hashing")
    argv = launcher.command("find the best model", 3, approve=True, planner="builtin")
    assert argv[1:3] == ["-m", "soma.cli"]
    assert argv[3:] == [
        "agent",
        "run",
        "find the best model",
        "--project",
        str(tmp_path),
        "--max-experiments",
        "3",
        "--approve",
        "--embedder",
        "hashing",
        "--planner",
        "builtin",
    ]
    assert "--no-approve" in launcher.command("g", 1)
    with pytest.raises(ValueError, match="goal"):
        launcher.command("  ", 3)
    with pytest.raises(ValueError, match="max_experiments"):
        launcher.command("g", 0)
    with pytest.raises(ValueError, match="embedder"):
        AgentLauncher(tmp_path, embedder="word2vec")
    assert cli_embedder_name(HashingEmbedder()) == "hashing"
    assert cli_embedder_name("default") == "default"
