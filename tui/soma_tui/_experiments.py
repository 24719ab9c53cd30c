"""The experiments of the selected line: a filterable, sortable table and a detail pane."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static, Tree

from soma_tui._format import format_duration, format_time, format_value, status_text
from soma_tui._pipeline_tree import PipelineNode, pipeline_nodes

__all__ = ["ExperimentDetail", "ExperimentsTable", "matches_filter", "primary_value"]


def primary_value(experiment: Any) -> float | None:
    """The experiment's value on its primary metric (``None`` when absent or not finite)."""
    metrics = experiment.metrics or {}
    value = metrics.get(experiment.primary_metric) if experiment.primary_metric else None
    if value is None and len(metrics) == 1:
        value = next(iter(metrics.values()))
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


_FIELD_FILTERS = ("status", "action", "verdict", "origin", "tag", "id", "parent")


def matches_filter(experiment: Any, query: str) -> bool:
    """Whether ``experiment`` matches every whitespace-separated term of ``query``.

    ``field:value`` terms (status, action, verdict, origin, tag, id, parent) match that field
    exactly (case-insensitive; ``tag`` checks membership); other terms are substrings searched in
    the name, hypothesis, pipeline, error and notes.
    """
    haystack = " ".join(
        str(part or "")
        for part in (
            experiment.name,
            experiment.hypothesis,
            experiment.pipeline_summary,
            experiment.error,
            experiment.notes,
            experiment.status,
            experiment.action,
            experiment.verdict,
        )
    ).lower()
    for term in query.lower().split():
        key, sep, value = term.partition(":")
        if sep and key in _FIELD_FILTERS:
            if key == "tag":
                if value not in [t.lower() for t in experiment.tags or []]:
                    return False
                continue
            actual = experiment.parent_id if key == "parent" else getattr(experiment, key, None)
            if str(actual or "").lower() != value:
                return False
        elif term not in haystack:
            return False
    return True


# Column key -> (header, sort key). A key of None (no value, no duration) always sorts last.
_COLUMNS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "status": ("status", lambda e: e.status or ""),
    "value": ("value", primary_value),
    "name": ("name", lambda e: (e.name or "").lower()),
    "verdict": ("verdict", lambda e: e.verdict or ""),
    "action": ("action", lambda e: e.action or ""),
    "started": ("started", lambda e: str(e.started or "")),
    "took": ("took", lambda e: e.duration_s),
    "hypothesis": ("hypothesis", lambda e: (e.hypothesis or "").lower()),
}


def _sorted(experiments: list[Any], column: str, reverse: bool) -> list[Any]:
    _, key = _COLUMNS[column]
    present = [e for e in experiments if key(e) is not None]
    missing = [e for e in experiments if key(e) is None]
    return sorted(present, key=key, reverse=reverse) + missing


class ExperimentsTable(DataTable):
    """Experiments with status colours; click a header (or press ``s``) to sort."""

    class ExperimentSelected(Message):
        def __init__(self, experiment: Any | None) -> None:
            super().__init__()
            self.experiment = experiment

    BINDINGS = [("s", "cycle_sort", "Sort")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.experiments: list[Any] = []
        self.shown: list[Any] = []
        self.filter_text = ""
        self.sort_column = "started"
        self.sort_reverse = True
        self._signature: tuple[Any, ...] = ()

    def on_mount(self) -> None:
        for key, (header, _) in _COLUMNS.items():
            self.add_column(header, key=key)
        self.border_title = "Experiments"

    @property
    def selected(self) -> Any | None:
        if not self.shown:
            return None
        return self.shown[min(self.cursor_row, len(self.shown) - 1)]

    def show(self, experiments: Sequence[Any]) -> None:
        """Replace the experiments (any order); redraws only when something changed."""
        self.experiments = list(experiments)
        self._redraw()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._redraw()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in _COLUMNS:
            raise ValueError(f"sort column must be one of {sorted(_COLUMNS)}, got {column!r}")
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else column == "value"
        self.sort_column, self.sort_reverse = column, reverse
        self._redraw()

    def action_cycle_sort(self) -> None:
        keys = list(_COLUMNS)
        self.sort_by(keys[(keys.index(self.sort_column) + 1) % len(keys)])

    def select_experiment(self, experiment_id: str) -> bool:
        for index, experiment in enumerate(self.shown):
            if experiment.id == experiment_id:
                self.move_cursor(row=index, animate=False)
                return True
        return False

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.post_message(self.ExperimentSelected(self.selected))

    def _redraw(self) -> None:
        shown = [e for e in self.experiments if matches_filter(e, self.filter_text)]
        shown = _sorted(shown, self.sort_column, self.sort_reverse)
        signature = (
            self.sort_column,
            self.sort_reverse,
            tuple((e.id, e.status, primary_value(e), e.verdict, e.finished) for e in shown),
        )
        if signature == self._signature:
            return
        self._signature = signature
        previous = self.selected.id if self.selected is not None else None
        self.shown = shown
        self.clear()
        for e in shown:
            self.add_row(
                status_text(e.status),
                Text(format_value(primary_value(e)), justify="right"),
                e.name or e.id,
                e.verdict or "",
                e.action or "",
                format_time(e.started),
                Text(format_duration(e.duration_s), justify="right"),
                _clip(e.hypothesis or "", 70),
                key=e.id,
            )
        arrow = "▼" if self.sort_reverse else "▲"
        self.border_subtitle = (
            f"{len(shown)}/{len(self.experiments)} · sort {self.sort_column} {arrow}"
        )
        if previous is not None:
            self.select_experiment(previous)
        self.post_message(self.ExperimentSelected(self.selected))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class ExperimentDetail(VerticalScroll):
    """Hypothesis, pipeline tree, params, metrics, parent, verdict and error of one experiment."""

    DEFAULT_CSS = """
    ExperimentDetail { padding: 0 1; }
    ExperimentDetail > #exp-head { margin-bottom: 1; }
    ExperimentDetail > Tree { height: auto; max-height: 12; padding: 0; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment: Any | None = None
        self.parent_names: dict[str, str] = {}
        self.rows: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="exp-head")
        yield Tree("pipeline", id="exp-pipeline")
        yield Static(id="exp-body")

    def on_mount(self) -> None:
        self.border_title = "Experiment"
        self.show(None)

    def show(self, experiment: Any | None, parent_names: dict[str, str] | None = None) -> None:
        self.experiment = experiment
        self.parent_names = parent_names or {}
        head = self.query_one("#exp-head", Static)
        body = self.query_one("#exp-body", Static)
        tree: Tree[Any] = self.query_one("#exp-pipeline", Tree)
        tree.clear()
        if experiment is None:
            head.update(Text("no experiment selected", style="dim"))
            body.update("")
            tree.display = False
            return
        head.update(self._head(experiment))
        spec = experiment.pipeline_spec or experiment.pipeline_summary
        tree.display = bool(spec)
        if spec:
            root = pipeline_nodes(spec)
            tree.root.set_label(Text("pipeline: ", style="bold") + Text(root.label))
            _fill(tree.root, root.children)
            tree.root.expand_all()
        body.update(self._body(experiment))

    def plain_text(self) -> str:
        """What the pane shows, as plain text (header, pipeline tree, field rows)."""
        if self.experiment is None:
            return ""
        lines = [self._head(self.experiment).plain]
        tree: Tree[Any] = self.query_one("#exp-pipeline", Tree)
        stack = [tree.root] if tree.display else []
        while stack:
            node = stack.pop()
            lines.append(str(node.label))
            stack.extend(reversed(node.children))
        lines += [f"{label} {value}" for label, value in self.rows]
        return "\n".join(lines)

    @staticmethod
    def _head(e: Any) -> Text:
        text = Text()
        text.append(e.name or e.id, style="bold")
        text.append("  ")
        text.append_text(status_text(e.status))
        text.append(f"  {e.id}", style="dim")
        if e.hypothesis:
            text.append("\n")
            text.append(e.hypothesis, style="italic")
        return text

    def _body(self, e: Any) -> Table:
        # A grid keeps wrapped values in their column in a narrow pane.
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")

        self.rows = []

        def row(label: str, value: str, style: str = "") -> None:
            self.rows.append((label, value))
            grid.add_row(label, Text(value, style=style))

        for name, value in sorted((e.metrics or {}).items()):
            marker = " (primary)" if name == e.primary_metric else ""
            row("metric", f"{name} = {format_value(value, 6)}{marker}")
        for name, value in sorted((e.params or {}).items()):
            row("param", f"{name} = {json.dumps(value, default=str)}")
        if e.parent_id:
            parent = self.parent_names.get(e.parent_id)
            row("parent", f"{parent} ({e.parent_id})" if parent else e.parent_id)
        if e.action:
            row("action", e.action)
        if e.verdict:
            style = {"supported": "green", "refuted": "red"}.get(e.verdict, "yellow")
            row("verdict", e.verdict, style)
        if e.error:
            row("error", str(e.error), "red")
        if e.notes:
            row("notes", str(e.notes))
        if e.tags:
            row("tags", ", ".join(e.tags))
        row("origin", f"{e.origin or '—'}" + (f" · run {e.run_id}" if e.run_id else ""))
        row("started", f"{format_time(e.started)} · took {format_duration(e.duration_s)}")
        if e.seed is not None:
            row("seed", str(e.seed))
        return grid


def _fill(parent: Any, children: list[PipelineNode]) -> None:
    for child in children:
        if child.children:
            _fill(parent.add(child.label, expand=True), child.children)
        else:
            parent.add_leaf(child.label)
