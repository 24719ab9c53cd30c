"""The agent-runs pane: pick a run, see its state, hypothesis and decision-log tail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import RichLog, Select, Static

from soma_tui._format import format_value
from soma_tui._run_state import RunWatch, entry_text

__all__ = ["AgentPane"]


def _summary_label(summary: Any) -> str:
    goal = str(getattr(summary, "goal", "") or "")
    status = str(getattr(summary, "status", "") or "?")
    return f"{summary.run_id} · {status.replace('_', ' ')} · {goal}"[:70]


class AgentPane(Vertical):
    """Watches one run; :meth:`apply` folds new journal entries into the view."""

    class RunChosen(Message):
        def __init__(self, run_id: str | None) -> None:
            super().__init__()
            self.run_id = run_id

    DEFAULT_CSS = """
    AgentPane { height: 1fr; }
    AgentPane > #run-select { margin: 0 0; }
    AgentPane > #run-status { height: auto; padding: 0 1; }
    AgentPane > #run-hypothesis {
        height: auto; max-height: 6; padding: 0 1; border-top: solid $primary 40%;
    }
    AgentPane > #run-log { height: 1fr; min-height: 4; border-top: solid $primary 40%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state: RunWatch | None = None
        self.run_ids: list[str] = []
        self._options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Select[str]([], prompt="no agent runs yet", id="run-select", compact=True)
        yield Static(id="run-status")
        yield Static(id="run-hypothesis")
        yield RichLog(id="run-log", max_lines=500, wrap=True, markup=False, highlight=False)

    def on_mount(self) -> None:
        self._render_state()

    def show_runs(self, summaries: Sequence[Any]) -> None:
        """Update the run list (newest first); keeps the watched run selected."""
        options = [(_summary_label(s), str(s.run_id)) for s in summaries]
        self.run_ids = [value for _, value in options]
        if options == self._options:
            return
        self._options = options
        select: Select[str] = self.query_one("#run-select", Select)
        with self.prevent(Select.Changed):
            select.set_options(options)
            if self.state is not None and self.state.run_id in self.run_ids:
                select.value = self.state.run_id
        select.prompt = "choose an agent run" if options else "no agent runs yet"

    def watch_run(self, run_id: str | None) -> None:
        """Start watching ``run_id`` from its first entry (``None``: watch nothing)."""
        self.state = None if run_id is None else RunWatch(run_id=run_id)
        self.query_one("#run-log", RichLog).clear()
        select: Select[str] = self.query_one("#run-select", Select)
        with self.prevent(Select.Changed):
            if run_id is not None and run_id in self.run_ids:
                select.value = run_id
            elif run_id is None:
                select.clear()
        self._render_state()

    def apply(self, entries: Sequence[Any]) -> None:
        """Fold journal entries of the watched run (and re-check its process); log the new ones."""
        if self.state is None:
            return
        before = (self.state.status, self.state.last_entry_id)
        log = self.query_one("#run-log", RichLog)
        for entry in self.state.add(entries):
            log.write(entry_text(entry))
        if (self.state.status, self.state.last_entry_id) != before:
            self._render_state()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        value = event.value
        run_id = None if value is Select.NULL or value is None else str(value)
        if self.state is None or run_id != self.state.run_id:
            self.post_message(self.RunChosen(run_id))

    def _render_state(self) -> None:
        status = self.query_one("#run-status", Static)
        hypothesis = self.query_one("#run-hypothesis", Static)
        if self.state is None:
            status.update(
                Text(
                    "no agent run to watch: start one with `soma agent run GOAL`"
                    " (or n here, with --project)",
                    style="dim",
                )
            )
            hypothesis.display = False
            return
        run = self.state.summary
        text = Text()
        style = {"running": "green", "paused": "yellow", "awaiting_approval": "bold magenta"}.get(
            run.status, "bold red" if run.status in ("failed", "interrupted") else "bold"
        )
        text.append(run.status.replace("_", " "), style=style)
        text.append(f"  iteration {run.iteration}")
        cap = f"/{run.max_experiments}" if run.max_experiments else ""
        text.append(f"  experiments {run.n_experiments}{cap}")
        budget = f"/${run.budget_usd:.2f}" if isinstance(run.budget_usd, int | float) else ""
        text.append(f"  spent ${run.cost_usd:.4f}{budget}")
        text.append(f"\nbest {format_value(run.best_value)}")
        if run.best_experiment_id:
            text.append(f" ({run.best_experiment_id})", style="dim")
        if run.line:
            text.append(f"  line {run.line}")
        if run.planner:
            text.append(f"  planner {run.planner}", style="dim")
        if run.goal:
            text.append(f"\ngoal: {run.goal}", style="italic")
        if run.reason and not run.live:
            text.append(f"\nended: {run.reason}", style="dim")
        elif self.state.last_decision:
            text.append(f"\nlast decision: {self.state.last_decision}", style="dim")
        status.update(text)
        current = self.state.hypothesis
        hypothesis.display = current is not None
        if current is not None:
            hypothesis.update(_hypothesis_text(current, pending=self.state.awaiting_approval))


def _hypothesis_text(h: dict[str, Any], *, pending: bool) -> Text:
    text = Text()
    label = "awaiting approval (a / v)" if pending else "current hypothesis"
    text.append(label, style="bold magenta" if pending else "bold")
    if h.get("action"):
        text.append(f" [{h['action']}]")
    if h.get("source"):
        text.append(f" from {h['source']}", style="dim")
    text.append(f"\n{h.get('statement', '')}")
    if h.get("spec"):
        spec = h["spec"] if isinstance(h["spec"], str) else json.dumps(h["spec"], default=str)
        text.append(f"\nspec: {spec}", style="cyan")
    if h.get("params"):
        text.append(f"\nparams: {json.dumps(h['params'], default=str)}", style="dim")
    if h.get("expected_effect"):
        text.append(f"\nexpects: {h['expected_effect']}", style="dim")
    return text
