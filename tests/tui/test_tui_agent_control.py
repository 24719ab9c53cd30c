"""Steering a real agent run from the TUI: every key writes a control entry the agent obeys."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from tui_helpers import wait_until

from soma.knowledge import HashingEmbedder, KnowledgeBase
from soma.project import init_project, load_project
from soma_tui import SomaApp
from soma_tui._agent_pane import AgentPane
from soma_tui._modals import ConfirmScreen, InjectHypothesisScreen, StartRunScreen


def _controls(kb_path: Path, run_id: str) -> list[dict[str, Any]]:
    with KnowledgeBase(kb_path, embedder=HashingEmbedder()) as kb:
        return [e.payload for e in kb.journal(run_id, kinds="control")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "proj", example="digits")


async def test_keys_pause_resume_approve_veto_inject_and_stop_a_running_agent(project) -> None:
    from soma_agent import run_agent

    kb_path = Path(load_project(project).kb_path)
    results: list[Any] = []
    errors: list[BaseException] = []

    def agent() -> None:
        try:
            results.append(
                run_agent(
                    project,
                    "maximize accuracy on digits",
                    max_experiments=4,
                    approve=True,
                    planner="builtin",
                    embedder=HashingEmbedder(),
                )
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    app = SomaApp(kb_path, project_root=project, embedder=HashingEmbedder(), poll_interval=0.1)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one("#agent-pane", AgentPane)

            def watch() -> Any:
                return pane.state

            def seen_kinds() -> list[str]:
                return [e.kind for e in pane.state.entries]

            await wait_until(
                pilot,
                lambda: watch() is not None and watch().awaiting_approval,
                what="the run to await approval",
            )
            run_id = watch().run_id
            app.action_show_tab("agent")
            assert app.check_action("approve", ()) is True
            assert app.check_action("resume", ()) is False

            await pilot.press("p")
            await wait_until(pilot, lambda: watch().paused, what="the agent to journal paused")
            assert _controls(kb_path, run_id)[-1] == {"command": "pause", "by": "tui"}
            assert app.check_action("pause", ()) is False
            assert app.check_action("resume", ()) is True
            assert "paused" in app.query_one("#status-bar").render().plain

            await pilot.press("r")
            await wait_until(
                pilot,
                lambda: watch().status == "awaiting_approval",
                what="the agent to journal resumed",
            )

            await pilot.press("a")
            await wait_until(
                pilot,
                lambda: watch().summary.n_experiments == 1,
                what="the approved experiment to run",
            )
            await wait_until(pilot, lambda: watch().awaiting_approval, what="the next hypothesis")
            vetoed = watch().summary.pending_hypothesis["id"]
            await pilot.press("v")
            assert isinstance(app.screen, ConfirmScreen)  # a veto is confirmed first
            await pilot.press("y")
            await wait_until(
                pilot, lambda: "vetoed" in seen_kinds(), what="the agent to journal vetoed"
            )

            # Inject a hypothesis through the form.
            await wait_until(pilot, lambda: watch().awaiting_approval, what="another hypothesis")
            await pilot.press("i")
            assert isinstance(app.screen, InjectHypothesisScreen)
            app.screen.query_one("#statement", Input).value = "Scaling then LogReg with C=0.5"
            app.screen.query_one("#spec", Input).value = "StandardScale() >> LogReg(C=0.5)"
            app.screen.query_one("#params", Input).value = "not json"
            app.screen.action_submit()
            await pilot.pause()
            assert isinstance(app.screen, InjectHypothesisScreen)  # refused, field named
            assert "params" in str(app.screen.query_one("#error").render())
            app.screen.query_one("#params", Input).value = ""
            app.screen.action_submit()
            await wait_until(
                pilot, lambda: "injected" in seen_kinds(), what="the agent to journal injected"
            )
            inject = _controls(kb_path, run_id)[-1]
            assert inject == {
                "command": "inject",
                "by": "tui",
                "hypothesis": {
                    "statement": "Scaling then LogReg with C=0.5",
                    "spec": "StandardScale() >> LogReg(C=0.5)",
                },
            }

            await pilot.press("x")
            await pilot.press("y")  # confirm
            await wait_until(pilot, lambda: not watch().live, what="the run to finish")
            assert watch().status == "stopped"
            for action in ("pause", "resume", "approve", "veto", "inject", "stop_run"):
                assert app.check_action(action, ()) is False, action
            await pilot.press("p")  # the run ended while watched: nothing is written
            await pilot.pause(0.3)
            assert _controls(kb_path, run_id)[-1]["command"] == "stop"
            log_text = "\n".join(str(line.text) for line in pane.query_one("#run-log").lines)
            assert "vetoed" in log_text and vetoed in log_text and "run_finished" in log_text
            assert app.last_error is None
    finally:
        thread.join(timeout=60)
    assert not errors, errors
    assert results and results[0].status == "stopped"


@pytest.mark.slow  # spawns `python -m soma.cli agent run` in its own process
async def test_starting_a_run_from_the_tui(project) -> None:
    kb_path = Path(load_project(project).kb_path)
    app = SomaApp(kb_path, project_root=project, embedder=HashingEmbedder(), poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#agent-pane", AgentPane)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, StartRunScreen)
        form.query_one("#goal", Input).value = "beat the digits baseline"
        form.query_one("#max_experiments", Input).value = "0"
        form.action_submit()
        await pilot.pause()
        assert "max experiments: expected an integer >= 1" in str(form.query_one("#error").render())
        form.query_one("#max_experiments", Input).value = "2"
        form.query_one("#planner", Input).value = "builtin"
        form.action_submit()
        await pilot.pause()
        assert app.screen is not form and app.query_one("#tabs").active == "agent"
        (pid,) = app.launcher.processes  # the agent runs in its own process
        await wait_until(
            pilot,
            lambda: (
                pane.state is not None and pane.state.summary.goal == "beat the digits baseline"
            ),
            timeout=90,
            what="the new run to appear",
        )
        await wait_until(pilot, lambda: not pane.state.live, timeout=90, what="the run to end")
        assert pane.state.status == "completed", pane.state.summary.reason
        assert pane.state.summary.n_experiments == 2 and pane.state.summary.pid == pid
    logs = list((project / ".soma" / "runs").glob("tui-*.log"))
    assert len(logs) == 1 and logs[0].stat().st_size > 0
