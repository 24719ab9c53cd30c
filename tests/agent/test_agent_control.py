"""Human oversight: pause / resume / stop / approve / veto / inject, through the journal."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from soma.errors import ValidationError
from soma.knowledge import KnowledgeBase
from soma_agent import run_agent
from soma_agent.run_control import (
    list_runs,
    new_run_id,
    run_status,
    send_control,
    summarize_journal,
)

GOAL = "maximize validation accuracy"


class Background:
    """A run in a thread; the test steers it through a second KB handle, like the TUI."""

    def __init__(self, tools: Any, **options: Any) -> None:
        self.run_id = new_run_id()
        self.result: Any = None
        self.error: BaseException | None = None
        self.kb = KnowledgeBase(tools.project.kb_path, embedder="hashing")

        def target() -> None:
            try:
                self.result = run_agent(
                    tools, GOAL, run_id=self.run_id, tools=tools, poll_interval_s=0.02, **options
                )
            except BaseException as exc:  # surfaced by join()
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def wait_for(self, kind: str, count: int = 1, timeout: float = 60.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.kb.journal(self.run_id, kinds=kind)
            if len(found) >= count:
                return found
            if not self.thread.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no {count} {kind!r} entries; journal: {self.kinds()}; {self.error}")

    def kinds(self) -> list[str]:
        return [e.kind for e in self.kb.journal(self.run_id)]

    def send(self, command: str, **kwargs: Any) -> int:
        return send_control(self.kb, self.run_id, command, by="tui", **kwargs)

    def join(self) -> Any:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def test_approve_and_veto(tools: Any) -> None:
    run = Background(tools, max_experiments=2, approve=True)
    first = run.wait_for("awaiting_approval")[0]
    assert run_status(run.kb, run.run_id).status == "awaiting_approval"
    assert run_status(run.kb, run.run_id).pending_hypothesis["id"] == first.payload["hypothesis_id"]
    time.sleep(0.1)
    assert run.kb.journal(run.run_id, kinds="experiment_started") == []  # it waits
    run.send("veto")
    vetoed = run.wait_for("vetoed")[0]
    assert vetoed.payload == {
        "hypothesis_id": first.payload["hypothesis_id"],
        "by": "tui",
        "control_id": vetoed.payload["control_id"],
    }
    for n in (2, 3):
        run.wait_for("awaiting_approval", n)
        run.send("approve")
        run.wait_for("approved", n - 1)
    result = run.join()
    assert result.n_experiments == 2
    started = [
        e.payload["hypothesis_id"] for e in run.kb.journal(run.run_id, kinds="experiment_started")
    ]
    assert first.payload["hypothesis_id"] not in started  # the vetoed one never ran
    # The vetoed hypothesis is not proposed again.
    specs = [e.payload["spec"] for e in tools.kb.journal(run.run_id, kinds="hypothesis")]
    assert len(specs) == len(set(specs)) == 3


def test_pause_resume_stop(tools: Any) -> None:
    run = Background(tools, max_experiments=50, patience=None)
    run.wait_for("experiment_result")
    run.send("pause")
    run.wait_for("paused")
    assert run_status(run.kb, run.run_id).paused
    n_paused = len(run.kb.journal(run.run_id, kinds="experiment_started"))
    time.sleep(0.3)
    assert len(run.kb.journal(run.run_id, kinds="experiment_started")) == n_paused
    run.send("resume")
    run.wait_for("resumed")
    run.wait_for("experiment_started", n_paused + 1)
    run.send("stop")
    result = run.join()
    assert result.status == "stopped" and "stop requested by tui" in result.reason
    assert result.n_experiments < 50
    kinds = run.kinds()
    assert kinds[-1] == "run_finished" and "report" in kinds and "stopped" in kinds
    assert list_runs(tools.kb)[-1].status == "stopped"


def test_inject_runs_the_human_hypothesis_next(tools: Any) -> None:
    run = Background(tools, max_experiments=2, approve=True)
    run.wait_for("awaiting_approval")
    run.send(
        "inject",
        hypothesis={
            "statement": "Min-max scaling suits a k-NN on pixels.",
            "spec": "MinMaxScale() >> KNN(n_neighbors=3)",
        },
    )
    run.wait_for("injected")
    run.send("approve")
    run.wait_for("hypothesis", 2)
    result = run.join()
    human = [
        e.payload
        for e in tools.kb.journal(run.run_id, kinds="hypothesis")
        if e.payload["source"] == "human"
    ]
    assert len(human) == 1 and human[0]["spec"] == "MinMaxScale() >> KNN(n_neighbors=3)"
    exp = tools.kb.experiments(run_id=run.run_id)
    assert any(e.hypothesis == "Min-max scaling suits a k-NN on pixels." for e in exp)
    assert result.n_experiments == 2  # the human hypothesis needed no approval


def test_control_validation(tools: Any) -> None:
    kb = tools.kb
    with pytest.raises(ValidationError, match="command"):
        send_control(kb, "run-x", "explode")
    with pytest.raises(ValidationError, match="hypothesis"):
        send_control(kb, "run-x", "inject")
    with pytest.raises(ValidationError, match=r"hypothesis\.spec"):
        send_control(kb, "run-x", "inject", hypothesis={"statement": "a claim"})
    with pytest.raises(ValidationError, match=r"hypothesis\.n_trials"):
        send_control(kb, "run-x", "inject", hypothesis={"statement": "s", "spec": "A()",
                                                        "n_trials": 0})  # fmt: skip
    with pytest.raises(ValidationError, match="only 'inject'"):
        send_control(kb, "run-x", "pause", hypothesis={"statement": "s", "spec": "A()"})
    with pytest.raises(ValidationError, match="run_id"):
        run_status(kb, "run-nope")


def test_summary_marks_dead_runs_interrupted() -> None:
    entries = [
        {
            "id": 1,
            "iteration": 0,
            "kind": "run_started",
            "payload": {"goal": "g", "pid": 2**22 + 12345},
        }
    ]
    assert summarize_journal("run-a", entries).status == "interrupted"
    assert summarize_journal("run-a", entries, check_pid=False).status == "running"


def test_regression_resume_after_ctrl_c_finishes_with_its_report(tools: Any) -> None:
    # Ctrl-C journals run_finished(stopped); the resumed run's finish step used to see that
    # entry and skip the report and the final run_finished.
    from soma_agent import resume_agent

    run_id = new_run_id()
    seen: list[str] = []

    def interrupt_after_first_result(entry: dict[str, Any]) -> None:
        seen.append(entry["kind"])
        if entry["kind"] == "experiment_result" and seen.count("experiment_result") == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_agent(
            tools, GOAL, run_id=run_id, tools=tools, max_experiments=3,
            on_entry=interrupt_after_first_result,
        )  # fmt: skip
    kb = tools.kb
    assert [e.payload["status"] for e in kb.journal(run_id, kinds="run_finished")] == ["stopped"]
    assert not kb.journal(run_id, kinds="report")

    result = resume_agent(tools, run_id, tools=tools)
    assert result.status == "completed" and result.n_experiments == 3
    assert result.report_path is not None
    assert len(kb.journal(run_id, kinds="report")) == 1
    finished = [e.payload["status"] for e in kb.journal(run_id, kinds="run_finished")]
    assert finished == ["stopped", "completed"]
    recorded = [e for e in kb.experiments(limit=None) if e.run_id == run_id]
    assert len(recorded) == 3
    with pytest.raises(ValidationError, match="already finished"):
        resume_agent(tools, run_id, tools=tools)


def test_regression_runs_started_in_the_same_second_list_in_start_order(tools: Any) -> None:
    # list_runs sorted by the id's timestamp and then its random suffix, so of two runs
    # started in one second the later could be listed first (and the TUI watch the wrong one).
    for run_id in ("run-20260105-090000-ffff", "run-20260105-090000-0000"):
        tools.kb.journal_append(run_id, 0, "run_started", {"goal": "g", "pid": None})
    assert [r.run_id for r in list_runs(tools.kb, check_pid=False)] == [
        "run-20260105-090000-ffff",
        "run-20260105-090000-0000",
    ]


def test_cli_inject_tune_queues_a_study_the_run_carries_out(tools: Any) -> None:
    from typer.testing import CliRunner

    from soma.cli import _register, app

    _register()
    run = Background(tools, max_experiments=4, approve=True)
    run.wait_for("awaiting_approval")
    result = CliRunner().invoke(
        app,
        ["agent", "inject", run.run_id, "TPE tunes KNN's neighbours.", "--spec",
         "MinMaxScale() >> KNN()", "--tune", "3", "--project", str(tools.project.root)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run.wait_for("injected")
    control = [e.payload for e in run.kb.journal(run.run_id, kinds="control")][-1]
    assert control["hypothesis"]["action"] == "tune" and control["hypothesis"]["n_trials"] == 3
    run.send("veto")  # the pending hypothesis; the injected one runs next, unasked
    first = run.wait_for("experiment_result")[0].payload
    assert first["n_recorded"] == 3  # the study's three trials
    run.send("stop")
    run.join()
