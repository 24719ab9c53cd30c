"""The Soma dashboard: research lines, experiments, agent runs and semantic search."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from soma_agent.run_control import LIVE_STATUSES, list_runs
from soma_tui._actions import ControlActions
from soma_tui._agent_pane import AgentPane
from soma_tui._commands import SomaCommands
from soma_tui._data import (
    KBSession,
    LineDetail,
    LineRow,
    load_change_points,
    load_line_detail,
    load_lines,
)
from soma_tui._experiments import ExperimentDetail, ExperimentsTable
from soma_tui._format import format_value
from soma_tui._lines import LinesTable, TrajectoryChart
from soma_tui._runner import AgentLauncher, cli_embedder_name
from soma_tui._search_pane import SearchPane

__all__ = ["SomaApp"]

_RUNS_REFRESH_S = 5.0


class SomaApp(ControlActions):
    """Watch and steer Soma research from a terminal.

    ``kb_path`` is the knowledge base file (it may not exist yet: the app waits for it).
    ``project_root`` enables starting agent runs. ``embedder`` is what the search session
    embeds queries with ("default" = all-MiniLM-L6-v2, loaded on the first search; "hashing"
    or an Embedder object); runs started here use the same kind.
    """

    TITLE = "Soma"
    COMMANDS = App.COMMANDS | {SomaCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]
    CSS = """
    #status-bar { dock: top; height: 1; background: $primary-background; padding: 0 1; }
    TabbedContent, TabPane { height: 1fr; }
    TabPane { padding: 0; }
    LinesTable, ExperimentsTable, TrajectoryChart, ExperimentDetail, AgentPane, SearchPane {
        border: round $primary 50%;
    }
    LinesTable:focus-within, ExperimentsTable:focus, ExperimentDetail:focus-within {
        border: round $accent;
    }
    #experiments-split { height: 1fr; }
    ExperimentsTable { width: 3fr; height: 1fr; }
    ExperimentDetail { width: 2fr; height: 1fr; }
    #filter { margin: 0 1; }
    #lines-empty { padding: 1 2; color: $text-muted; }
    #changes { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("a", "approve", "Approve"),
        Binding("v", "veto", "Veto"),
        Binding("i", "inject", "Inject"),
        Binding("x", "stop_run", "Stop"),
        Binding("n", "new_run", "New run", show=False),
        Binding("slash", "search", "Search"),
        Binding("f", "filter", "Filter", show=False),
        Binding("s", "sort", "Sort", show=False),
        Binding("1", "show_tab('lines')", "Lines", show=False),
        Binding("2", "show_tab('experiments')", "Experiments", show=False),
        Binding("3", "show_tab('agent')", "Agent", show=False),
        Binding("4", "show_tab('search')", "Search tab", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        kb_path: str | Path,
        *,
        project_root: str | Path | None = None,
        embedder: Any = "default",
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.kb_path = Path(kb_path)
        self.project_root = None if project_root is None else Path(project_root)
        self.poll_interval = poll_interval
        self.reader = KBSession(self.kb_path, embedder=embedder, name="reader")
        self.searcher = KBSession(self.kb_path, embedder=embedder, name="search")
        self.launcher = (
            AgentLauncher(self.project_root, embedder=cli_embedder_name(embedder))
            if self.project_root
            else None
        )
        self.line_rows: list[LineRow] = []
        self.detail: LineDetail | None = None
        self.last_error: str | None = None
        self.polls = 0
        self._version: int | None = None
        self._polling = False
        self._reload_due = True
        self._last_full_reload = 0.0
        self._searching = False
        self._searched_once = False
        self._pending_experiment: str | None = None
        self._run_ids: list[str] | None = None
        self._status_text = Text()
        self._last_runs_refresh = 0.0

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with TabbedContent(initial="lines", id="tabs"):
            with TabPane("Lines", id="lines"):
                yield LinesTable(id="lines-table")
                yield Static("", id="lines-empty")
                yield TrajectoryChart(id="chart")
                yield Static("", id="changes")
            with TabPane("Experiments", id="experiments"):
                yield Input(
                    placeholder="filter (f): words, status:failed, action:tune, verdict:…, tag:…",
                    id="filter",
                    compact=True,
                )
                with Horizontal(id="experiments-split"):
                    yield ExperimentsTable(id="experiments-table")
                    yield ExperimentDetail(id="detail")
            with TabPane("Agent", id="agent"):
                yield AgentPane(id="agent-pane")
            with TabPane("Search", id="search"):
                yield SearchPane(id="search-pane")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.project_root.name if self.project_root else self.kb_path.name
        self.query_one("#chart", TrajectoryChart).show(None)
        self.query_one("#changes", Static).display = False
        self._render_status_bar()
        self.set_interval(self.poll_interval, self.poll)
        self.call_after_refresh(self.poll)
        self.focus_tab_widget("lines")  # arrow keys work at once, not only after Tab

    def on_unmount(self) -> None:
        self.reader.close()
        self.searcher.close()

    # -- polling the knowledge base ----------------------------------------------------------
    async def poll(self) -> None:
        """One cheap look at the KB: reload views if anything was committed, tail the journal."""
        if self._polling:
            return
        self._polling = True
        try:
            version = await self.reader.data_version()
            stale = time.monotonic() - self._last_full_reload > 10
            if version != self._version or self._reload_due or stale:
                self._version = version
                self._reload_due = False
                await self._reload_views()
            await self._tail_journal()
            self.last_error = None
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.log.error(f"poll failed: {self.last_error}")
        finally:
            self.polls += 1
            self._polling = False
            with contextlib.suppress(NoMatches):  # the app may be closing meanwhile
                self._render_status_bar()

    async def _reload_views(self) -> None:
        self._last_full_reload = time.monotonic()
        rows = await self.reader.call(load_lines) or []
        self.line_rows = rows
        empty = self.query_one("#lines-empty", Static)
        empty.display = not rows
        if not rows:
            empty.update(
                "The knowledge base has no research lines yet.\n"
                "Record experiments with `soma run`, `soma study run` or `soma agent run`;"
                " they appear here as they are written."
            )
        lines_table = self.query_one("#lines-table", LinesTable)
        lines_table.show(rows)
        selected = lines_table.selected_line
        if selected is not None:
            await self._load_line(selected)
        await self._refresh_runs()

    async def _load_line(self, name: str) -> None:
        row = next((r for r in self.line_rows if r.name == name), None)
        if row is None:
            return
        detail = await self.reader.call(lambda kb: load_line_detail(kb, row, change_points=False))
        if detail is None:
            return
        previous = self.detail
        if previous is not None and previous.line.name == name:
            # Keep the last change points on screen until the new ones are computed.
            detail = replace(detail, change_points=previous.change_points)
        self._show_line(detail)
        table = self.query_one("#experiments-table", ExperimentsTable)
        if self._pending_experiment is not None:
            if not table.select_experiment(self._pending_experiment):
                self.query_one("#filter", Input).value = ""
                table.set_filter("")
                table.select_experiment(self._pending_experiment)
            self._pending_experiment = None
            table.focus()
        change_points = await self.reader.call(load_change_points, name)
        if self.detail is not None and self.detail.line.name == name and change_points is not None:
            self._show_line(replace(self.detail, change_points=change_points))

    def _show_line(self, detail: LineDetail) -> None:
        self.detail = detail
        self.query_one("#chart", TrajectoryChart).show(detail)
        self._show_change_points(detail)
        table = self.query_one("#experiments-table", ExperimentsTable)
        table.border_title = f"Experiments · {detail.line.name}"
        table.show(detail.experiments)

    def _show_change_points(self, detail: LineDetail) -> None:
        changes = self.query_one("#changes", Static)
        changes.display = bool(detail.change_points)
        text = Text()
        for cp in detail.change_points:
            if text:
                text.append("\n")
            text.append("│ ", style="bold red")
            text.append(f"#{cp.index + 1} ", style="bold")
            text.append(f"{format_value(cp.before_mean)} → {format_value(cp.after_mean)}")
            what = [f"{k} {v[0]} → {v[1]}" for k, v in cp.changes.items() if k != "pipeline_spec"]
            text.append(f" after {'; '.join(what[:2])}" if what else f" at {cp.experiment_id}")
        changes.update(text)

    async def _refresh_runs(self) -> None:
        # list_runs folds every run's whole journal: only redo it when a run appeared or every
        # few seconds (statuses of runs not watched), never on each journal write.
        run_ids = await self.reader.call(lambda kb: kb.journal_runs())
        if run_ids is None:
            return
        due = time.monotonic() - self._last_runs_refresh > _RUNS_REFRESH_S
        if run_ids == self._run_ids and not due:
            return
        self._run_ids = run_ids
        self._last_runs_refresh = time.monotonic()
        runs = list(reversed(await self.reader.call(list_runs) or []))  # newest first
        pane = self.query_one("#agent-pane", AgentPane)
        pane.show_runs(runs)
        watched = pane.state
        live = [r for r in runs if r.live]
        if watched is None and runs:
            pane.watch_run((live or runs)[0].run_id)
        elif watched is not None and not watched.live and live and live[0].run_id != watched.run_id:
            # The watched run is over and another one is live: follow the live one.
            pane.watch_run(live[0].run_id)
        self.refresh_bindings()

    async def _tail_journal(self) -> None:
        pane = self.query_one("#agent-pane", AgentPane)
        watch = pane.state
        if watch is None:
            return
        run_id, after = watch.run_id, watch.last_entry_id
        entries = await self.reader.call(lambda kb: kb.journal(run_id, after_id=after))
        if pane.state is not watch or entries is None:
            return  # the user switched runs while we were reading
        was = (watch.status, watch.awaiting_approval)
        pane.apply(entries)
        if (watch.status, watch.awaiting_approval) != was:
            self.refresh_bindings()
            if was[0] in LIVE_STATUSES and not watch.live:
                self.notify(f"{run_id} ended: {watch.status}", timeout=4)
                self._last_runs_refresh = 0.0  # let the run list show it at once
        if self.launcher is not None:
            self.launcher.reap()

    def _render_status_bar(self) -> None:
        text = Text()
        text.append("Soma", style="bold")
        text.append(f" · {self.sub_title}", style="dim")
        n_exp = sum(r.n_experiments for r in self.line_rows)
        text.append(f" · {len(self.line_rows)} lines · {n_exp} exp.")
        state = self.query_one("#agent-pane", AgentPane).state
        if state is not None:
            text.append(f" · run …{state.run_id[-4:]} {state.status.replace('_', ' ')}")
        if self.last_error:
            text.append(f" · ⚠ {self.last_error[:60]}", style="bold red")
        if text != self._status_text:  # repaint only on change (this runs on every poll)
            self._status_text = text
            self.query_one("#status-bar", Static).update(text)

    # -- events from the panes ---------------------------------------------------------------
    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id is not None:
            self.focus_tab_widget(event.pane.id)

    @on(LinesTable.LineSelected)
    async def _line_selected(self, event: LinesTable.LineSelected) -> None:
        if self.detail is None or self.detail.line.name != event.name:
            with contextlib.suppress(NoMatches):  # the app may close while the KB is read
                await self._load_line(event.name)

    @on(ExperimentsTable.ExperimentSelected)
    def _experiment_selected(self, event: ExperimentsTable.ExperimentSelected) -> None:
        names = {}
        if self.detail is not None:
            names = {e.id: e.name or e.id for e in self.detail.experiments}
        with contextlib.suppress(NoMatches):  # a late message while the app closes
            self.query_one("#detail", ExperimentDetail).show(event.experiment, names)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one("#experiments-table", ExperimentsTable).set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one("#experiments-table", ExperimentsTable).focus()

    @on(AgentPane.RunChosen)
    def _run_chosen(self, event: AgentPane.RunChosen) -> None:
        self.query_one("#agent-pane", AgentPane).watch_run(event.run_id)
        self.refresh_bindings()

    @on(SearchPane.SearchRequested)
    def _search_requested(self, event: SearchPane.SearchRequested) -> None:
        if self._searching:
            self.notify("a search is already running", severity="warning")
            return
        self._searching = True
        pane = self.query_one("#search-pane", SearchPane)
        first = not self._searched_once
        pane.set_status(
            "loading the embedding model and searching…" if first else "searching…", "italic"
        )
        self.run_worker(self._search(event.text), group="search", exclusive=True)

    async def _search(self, text: str) -> None:
        pane = self.query_one("#search-pane", SearchPane)
        started = time.perf_counter()
        try:
            hits = await self.searcher.call(lambda kb: kb.query(text, k=25))
        except Exception as exc:
            pane.set_status(f"search failed: {type(exc).__name__}: {exc}", "bold red")
            return
        finally:
            self._searching = False
        self._searched_once = True
        elapsed = time.perf_counter() - started
        if hits is None:
            pane.show_hits([], "the knowledge base does not exist yet")
            return
        pane.show_hits(hits, f"{len(hits)} hits for {text!r} in {elapsed:.2f}s · Enter opens one")

    @on(SearchPane.HitChosen)
    async def _hit_chosen(self, event: SearchPane.HitChosen) -> None:
        experiment = event.experiment
        self._pending_experiment = experiment.id
        self.action_show_tab("experiments")
        lines_table = self.query_one("#lines-table", LinesTable)
        if experiment.line and experiment.line != lines_table.selected_line:
            lines_table.select_line(experiment.line)  # its LineSelected loads and selects
        else:
            await self._load_line(experiment.line or "")


def run(
    kb_path: str | Path, *, project_root: str | Path | None = None, embedder: Any = "default"
) -> None:
    """Run the dashboard in this terminal until the user quits."""
    with contextlib.suppress(KeyboardInterrupt):
        SomaApp(kb_path, project_root=project_root, embedder=embedder).run()
    sys.stdout.flush()
