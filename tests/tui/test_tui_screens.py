"""Every screen renders at 80x24 (and larger), with its key panes visible; the command palette
runs Soma's commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widget import Widget
from tui_helpers import wait_until

from soma.knowledge import HashingEmbedder, KnowledgeBase
from soma_tui import SomaApp
from soma_tui._agent_pane import AgentPane
from soma_tui._modals import ConfirmScreen, InjectHypothesisScreen, StartRunScreen

RUN_ID = "run-20260105-090000-abcd"


def journal_a_waiting_run(kb_path: Path) -> None:
    """A run journal as the agent writes it, up to a hypothesis awaiting approval.

    ``pid`` is this process, so the run counts as live while the test runs.
    """
    with KnowledgeBase(kb_path, embedder=HashingEmbedder()) as kb:
        kb.journal_append(
            RUN_ID,
            0,
            "run_started",
            {
                "goal": "find the best preprocessing",
                "planner": "builtin",
                "max_experiments": 10,
                "budget_usd": 1.0,
                "approve": True,
                "line": "preprocessing",
                "metric": "accuracy",
                "direction": "maximize",
                "pid": os.getpid(),
            },
        )
        kb.journal_append(
            RUN_ID,
            1,
            "observation",
            {
                "summary": "9 experiments, best 0.92",
                "best_value": 0.92,
                "best_experiment_id": "exp-x",
                "n_experiments": 9,
            },
        )
        kb.journal_append(
            RUN_ID,
            1,
            "hypothesis",
            {
                "id": "h1",
                "statement": "ZCA whitening before PCA raises accuracy",
                "rationale": "pixels are correlated",
                "line": "preprocessing",
                "spec": "ZCA() >> PCA(n_components=32) >> LogReg()",
                "params": {},
                "expected_effect": "+0.5% accuracy",
                "action": "improve",
                "parent_id": None,
                "source": "builtin",
            },
        )
        kb.journal_append(RUN_ID, 1, "awaiting_approval", {"hypothesis_id": "h1"})


def _visible(app: SomaApp, selector: str) -> bool:
    widget = app.query_one(selector, Widget)
    region = widget.region
    return widget.display and region.width > 0 and region.height > 0


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_every_screen_renders(seeded_kb, embedder, tmp_path: Path, size) -> None:
    path, _ = seeded_kb
    journal_a_waiting_run(path)
    project = tmp_path / "proj"
    project.mkdir()
    app = SomaApp(path, project_root=project, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=size) as pilot:
        pane = app.query_one("#agent-pane", AgentPane)
        await wait_until(
            pilot, lambda: pane.state is not None and pane.state.awaiting_approval, what="the run"
        )
        panes = {
            "lines": ["#lines-table", "#chart", "#changes"],
            "experiments": ["#filter", "#experiments-table", "#detail", "#exp-pipeline"],
            "agent": ["#run-select", "#run-status", "#run-hypothesis", "#run-log"],
            "search": ["#search-input", "#search-hits"],
        }
        texts = {
            "lines": ["preprocessing", "regularisation", "accuracy ↑"],
            "experiments": ["prep-8", "StandardScale()"],
            "agent": [
                RUN_ID,
                "awaiting approval",
                "ZCA whitening before PCA",
                "iteration 1",
                "experiments 9/10",
                "spent $0.0000/$1.00",  # budget used
            ],
            "search": ["score"],
        }
        for tab, selectors in panes.items():
            app.action_show_tab(tab)
            await pilot.pause(0.1)
            for selector in selectors:
                assert _visible(app, selector), f"{selector} hidden on {tab} at {size}"
            svg = app.save_screenshot(filename=f"{tab}.svg", path=str(tmp_path))
            content = Path(svg).read_text()
            for text in texts[tab]:
                # SVG text escapes spaces as &#160;
                assert text.replace(" ", "&#160;") in content, f"{text!r} not drawn on {tab}"
        # The footer names the run controls that apply now (outside a text field).
        app.action_show_tab("agent")
        await pilot.pause(0.1)
        footer = Path(app.save_screenshot(path=str(tmp_path))).read_text()
        for label in ("Pause", "Approve", "Veto", "Inject"):
            assert label in footer
        assert "Resume" not in footer  # not paused
        for screen in (
            InjectHypothesisScreen(RUN_ID),
            StartRunScreen(str(project)),
            ConfirmScreen(f"Stop {RUN_ID}? (y/n)"),
        ):
            await app.push_screen(screen)
            await pilot.pause(0.1)
            buttons = list(screen.query("Button"))
            assert buttons and all(b.region.height > 0 for b in buttons), type(screen).__name__
            for widget in screen.query("Input"):
                assert widget.region.height > 0 and widget.region.width > 20
            app.pop_screen()
            await pilot.pause()
        assert app.last_error is None


async def test_command_palette_runs_a_control_command(seeded_kb, embedder) -> None:
    path, _ = seeded_kb
    journal_a_waiting_run(path)
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#agent-pane", AgentPane)
        await wait_until(
            pilot, lambda: pane.state is not None and pane.state.awaiting_approval, what="the run"
        )
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"veto")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: any(e.kind == "control" for e in pane.state.entries),
            what="the control entry",
        )
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        entry = kb.journal(RUN_ID, kinds="control")[-1]
    assert entry.payload == {"command": "veto", "by": "tui"}
    assert entry.iteration == 1  # the run's current iteration


async def test_inject_form_can_ask_for_a_tune_study(seeded_kb, embedder) -> None:
    from textual.widgets import Input

    path, _ = seeded_kb
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    results: list[object] = []
    async with app.run_test(size=(80, 24)) as pilot:
        screen = InjectHypothesisScreen(RUN_ID)
        await app.push_screen(screen, results.append)
        await pilot.pause(0.1)
        screen.query_one("#statement", Input).value = "TPE finds a better C"
        screen.query_one("#spec", Input).value = "StandardScale() >> LogReg()"
        screen.query_one("#tune", Input).value = "0"
        screen.action_submit()
        await pilot.pause()
        assert app.screen is screen and "tune" in str(screen.query_one("#error").render())
        screen.query_one("#tune", Input).value = "8"
        screen.action_submit()
        await pilot.pause()
    assert results == [
        {
            "statement": "TPE finds a better C",
            "spec": "StandardScale() >> LogReg()",
            "action": "tune",
            "n_trials": 8,
        }
    ]
