"""The dashboard's actions: steer the watched run, start runs, move between tabs.

Every run action writes one ``control`` journal entry through ``soma_agent.run_control``;
:meth:`ControlActions.check_action` enables only those that apply to the run's state, which
also drives the footer and the command palette.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from textual.app import App
from textual.css.query import NoMatches
from textual.widgets import Input, TabbedContent

from soma.errors import ValidationError
from soma_agent.run_control import send_control
from soma_tui._agent_pane import AgentPane
from soma_tui._data import KBSession
from soma_tui._experiments import ExperimentsTable
from soma_tui._modals import ConfirmScreen, InjectHypothesisScreen, StartRunScreen
from soma_tui._runner import AgentLauncher

__all__ = ["TABS", "ControlActions"]

TABS = ("lines", "experiments", "agent", "search")
_RUN_ACTIONS = frozenset({"pause", "resume", "stop_run", "approve", "veto", "inject"})
# Each tab's main widget: it takes the focus whenever the tab is shown, so keys typed next go
# to it and never to the tab strip (from where one-letter bindings would steer the agent).
TAB_FOCUS = {
    "lines": "#lines-table",
    "experiments": "#experiments-table",
    "agent": "#run-select",
    "search": "#search-input",
}
# One-key bindings: never fired while a text field has the focus, whatever the field does
# with the key.
_LETTER_ACTIONS = _RUN_ACTIONS | {"new_run", "search", "filter", "sort", "quit", "show_tab"}


class ControlActions(App[None]):
    """Actions of :class:`~soma_tui.SomaApp` (which sets the attributes declared here)."""

    reader: KBSession
    launcher: AgentLauncher | None
    project_root: Path | None
    _reload_due: bool

    async def poll(self) -> None:
        raise NotImplementedError

    _focus_request: str | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _LETTER_ACTIONS and self._typing_in_dashboard():
            return False
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

    def _typing_in_dashboard(self) -> bool:
        # Inputs of the dashboard itself; the command palette and forms have their own focus.
        focused = self.focused
        return isinstance(focused, Input) and focused.screen is self.screen_stack[0]

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

    def action_veto(self) -> None:
        self._confirm_then_send("veto", "Veto the pending hypothesis of {run}? (y/n)")

    def action_stop_run(self) -> None:
        self._confirm_then_send("stop", "Stop {run}? (y/n)")

    def _confirm_then_send(self, command: str, question: str) -> None:
        """Destructive commands ask first: a stray key must not veto or stop a run."""
        state = self.query_one("#agent-pane", AgentPane).state
        if state is None:
            return

        async def decided(yes: bool | None) -> None:
            if yes:
                await self._send(command)

        self.push_screen(ConfirmScreen(question.format(run=state.run_id)), decided)

    def action_inject(self) -> None:
        state = self.query_one("#agent-pane", AgentPane).state
        if state is None:
            return

        async def injected(hypothesis: dict[str, Any] | None) -> None:
            if hypothesis is not None:
                await self._send("inject", hypothesis)

        validate = self.check_injected if self.project_root is not None else None
        self.push_screen(InjectHypothesisScreen(state.run_id, validate), injected)

    _project: Any = None

    def check_injected(self, hypothesis: dict[str, Any]) -> str:
        """'' when the run would accept ``hypothesis``, else the reason ``soma agent inject``
        gives for the same spec (both go through ``check_pipeline``)."""
        import pydantic

        from soma.errors import SomaError
        from soma_agent._hypothesis import ProposedHypothesis
        from soma_agent._planner_llm import check_pipeline

        try:
            if self._project is None:
                from soma.project import load_project

                self._project = load_project(self.project_root or ".")
            proposal = ProposedHypothesis(
                statement=hypothesis["statement"],
                spec=hypothesis["spec"],
                params=hypothesis.get("params", {}),
                action=hypothesis.get("action", "improve"),
            )
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        except SomaError as exc:
            return f"project: {exc}"
        return check_pipeline(proposal, SimpleNamespace(project=self._project))

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

    def action_show_tab(self, tab: str, focus: str | None = None) -> None:
        """Show ``tab`` and focus its main widget (or the ``focus`` selector)."""
        if tab not in TABS:
            return
        tabs = self.query_one("#tabs", TabbedContent)
        self._focus_request = focus
        if tabs.active == tab:
            self.focus_tab_widget(tab)
        else:
            tabs.active = tab  # its TabActivated message focuses the widget

    def focus_tab_widget(self, tab: str) -> None:
        target, self._focus_request = self._focus_request or TAB_FOCUS.get(tab), None
        if target is not None:
            with contextlib.suppress(NoMatches):
                self.query_one(target).focus()

    def action_search(self) -> None:
        self.action_show_tab("search", focus="#search-input")

    def action_filter(self) -> None:
        self.action_show_tab("experiments", focus="#filter")

    def action_sort(self) -> None:
        self.action_show_tab("experiments")
        self.query_one("#experiments-table", ExperimentsTable).action_cycle_sort()

    async def action_reload(self) -> None:
        self._reload_due = True
        await self.poll()
