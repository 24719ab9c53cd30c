"""The dashboard's actions: steer the watched run, start runs, move between tabs.

Every run action writes one ``control`` journal entry through ``soma_agent.control``;
:meth:`ControlActions.check_action` enables only those that apply to the run's state, which
also drives the footer and the command palette.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App
from textual.css.query import NoMatches
from textual.widgets import Input, TabbedContent

from soma.errors import ValidationError
from soma_agent.control import send_control
from soma_tui._agent_pane import AgentPane
from soma_tui._data import KBSession
from soma_tui._experiments import ExperimentsTable
from soma_tui._modals import ConfirmScreen, InjectHypothesisScreen, StartRunScreen
from soma_tui._runner import AgentLauncher

__all__ = ["TABS", "ControlActions"]

TABS = ("lines", "experiments", "agent", "search")
_RUN_ACTIONS = frozenset({"pause", "resume", "stop_run", "approve", "veto", "inject"})


class ControlActions(App[None]):
    """Actions of :class:`~soma_tui.SomaApp` (which sets the attributes declared here)."""

    reader: KBSession
    launcher: AgentLauncher | None
    project_root: Path | None
    _reload_due: bool

    async def poll(self) -> None:
        raise NotImplementedError

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        try:
            state = self.query_one("#agent-pane", AgentPane).state
        except NoMatches:
            state = None
        if state is None or not state.live:
            return action not in _RUN_ACTIONS and (action != "new_run" or self.launcher is not None)
        if action == "pause":
            return not state.paused
        if action == "resume":
            return state.paused
        if action in ("approve", "veto"):
            return state.awaiting_approval and not state.paused
        if action == "new_run":
            return self.launcher is not None
        return True

    async def _send(self, command: str, hypothesis: dict[str, Any] | None = None) -> int | None:
        state = self.query_one("#agent-pane", AgentPane).state
        if state is None:
            return None
        run_id = state.run_id
        try:
            entry_id = await self.reader.call(
                lambda kb: send_control(kb, run_id, command, hypothesis=hypothesis, by="tui")
            )
        except ValidationError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return None
        self.notify(f"{command} → {run_id}", timeout=3)
        return entry_id

    async def action_pause(self) -> None:
        await self._send("pause")

    async def action_resume(self) -> None:
        await self._send("resume")

    async def action_approve(self) -> None:
        await self._send("approve")

    async def action_veto(self) -> None:
        await self._send("veto")

    def action_stop_run(self) -> None:
        state = self.query_one("#agent-pane", AgentPane).state
        if state is None:
            return

        async def decided(yes: bool | None) -> None:
            if yes:
                await self._send("stop")

        self.push_screen(ConfirmScreen(f"Stop {state.run_id}? (y/n)"), decided)

    def action_inject(self) -> None:
        state = self.query_one("#agent-pane", AgentPane).state
        if state is None:
            return

        async def injected(hypothesis: dict[str, Any] | None) -> None:
            if hypothesis is not None:
                await self._send("inject", hypothesis)

        self.push_screen(InjectHypothesisScreen(state.run_id), injected)

    def action_new_run(self) -> None:
        if self.launcher is None:
            return
        launcher = self.launcher

        def start(options: dict[str, Any] | None) -> None:
            if options is None:
                return
            try:
                pid, log_path = launcher.start(**options)
            except (OSError, ValueError) as exc:
                self.notify(f"could not start the agent: {exc}", severity="error")
                return
            self.notify(f"agent started (pid {pid}); log {log_path}", timeout=5)
            self.query_one("#agent-pane", AgentPane).watch_run(None)
            self._reload_due = True
            self.action_show_tab("agent")

        self.push_screen(StartRunScreen(str(self.project_root)), start)

    def action_show_tab(self, tab: str) -> None:
        if tab in TABS:
            self.query_one("#tabs", TabbedContent).active = tab

    def action_search(self) -> None:
        self.action_show_tab("search")
        self.query_one("#search-input", Input).focus()

    def action_filter(self) -> None:
        self.action_show_tab("experiments")
        self.query_one("#filter", Input).focus()

    def action_sort(self) -> None:
        self.action_show_tab("experiments")
        self.query_one("#experiments-table", ExperimentsTable).action_cycle_sort()

    async def action_reload(self) -> None:
        self._reload_due = True
        await self.poll()
