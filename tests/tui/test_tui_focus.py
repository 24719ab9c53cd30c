"""Keys go to the widget the user sees: typing never steers the agent (issue 17, items 1)."""

from __future__ import annotations

from test_tui_screens import RUN_ID, journal_a_waiting_run
from textual.widgets import Input
from tui_helpers import wait_until

from soma.knowledge import HashingEmbedder, KnowledgeBase
from soma_tui import SomaApp
from soma_tui._agent_pane import AgentPane
from soma_tui._lines import LinesTable
from soma_tui._modals import ConfirmScreen


def _controls(path) -> list[dict]:
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        return [e.payload for e in kb.journal(RUN_ID, kinds="control")]


async def test_regression_typing_in_the_search_tab_does_not_veto(seeded_kb, embedder) -> None:
    # Switching to the Search tab left focus on the tab strip, so "svc" typed there sent
    # "v" (veto) to a run awaiting approval and "s" re-sorted the experiments.
    path, _ = seeded_kb
    journal_a_waiting_run(path)
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#agent-pane", AgentPane)
        await wait_until(
            pilot, lambda: pane.state is not None and pane.state.awaiting_approval, what="the run"
        )
        await pilot.press("4", *"svc")
        await pilot.pause(0.2)
        search = app.query_one("#search-input", Input)
        assert app.focused is search
        assert search.value == "svc"
        assert not isinstance(app.screen, ConfirmScreen)
        # Every tab's main widget takes the focus on a switch, whichever way it is made.
        for key, widget_id in (("1", "lines-table"), ("2", "experiments-table")):
            await pilot.press("escape") if isinstance(app.focused, Input) else None
            app.set_focus(None)
            await pilot.press(key)
            await pilot.pause(0.1)
            assert app.focused is not None and app.focused.id == widget_id
    assert _controls(path) == []


async def test_regression_run_keys_are_disabled_while_an_input_has_focus(
    seeded_kb, embedder
) -> None:
    path, _ = seeded_kb
    journal_a_waiting_run(path)
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#agent-pane", AgentPane)
        await wait_until(
            pilot, lambda: pane.state is not None and pane.state.awaiting_approval, what="the run"
        )
        assert app.check_action("veto", ()) is True
        await pilot.press("f")  # the experiments filter box
        assert isinstance(app.focused, Input)
        for action in ("veto", "approve", "stop_run", "pause", "sort", "quit"):
            assert app.check_action(action, ()) is False, action
        await pilot.press(*"va")
        assert app.query_one("#filter", Input).value == "va"
    assert _controls(path) == []


async def test_regression_arrow_keys_work_at_start(seeded_kb, embedder) -> None:
    # At start the focus was nowhere, so the arrow keys did nothing until Tab was pressed.
    path, _ = seeded_kb
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#lines-table", LinesTable)
        await wait_until(pilot, lambda: table.row_count >= 2, what="the lines")
        assert app.focused is not None and table in (app.focused, *app.focused.ancestors)
        before = table.cursor_row
        await pilot.press("down")
        await pilot.pause(0.1)
        assert table.cursor_row == before + 1


async def test_veto_asks_for_confirmation_and_no_sends_nothing(seeded_kb, embedder) -> None:
    path, _ = seeded_kb
    journal_a_waiting_run(path)
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#agent-pane", AgentPane)
        await wait_until(
            pilot, lambda: pane.state is not None and pane.state.awaiting_approval, what="the run"
        )
        await pilot.press("3", "v")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause(0.2)
    assert _controls(path) == []
