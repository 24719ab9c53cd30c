"""Semantic search over the knowledge base: a query box and ranked hits with their score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from soma_tui._experiments import primary_value
from soma_tui._format import format_value, status_text

__all__ = ["SearchPane"]


class SearchPane(Vertical):
    """Type a question, press Enter; Enter on a hit opens the experiment in its line."""

    class SearchRequested(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class HitChosen(Message):
        def __init__(self, experiment: Any) -> None:
            super().__init__()
            self.experiment = experiment

    DEFAULT_CSS = """
    SearchPane { height: 1fr; }
    SearchPane > #search-status { height: 1; padding: 0 1; color: $text-muted; }
    SearchPane > #search-hits { height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hits: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="search the knowledge base, e.g. 'scaling before PCA'  (Enter)",
            id="search-input",
            compact=True,
        )
        yield Static(
            "semantic search: the embedding model loads on the first query", id="search-status"
        )
        table: DataTable[Any] = DataTable(id="search-hits", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#search-hits", DataTable)
        for key in ("score", "line", "status", "value", "experiment"):
            table.add_column(key, key=key)

    def set_status(self, message: str, style: str = "") -> None:
        self.query_one("#search-status", Static).update(Text(message, style=style))

    def show_hits(self, hits: Sequence[Any], note: str = "") -> None:
        """Fill the results with ``SearchHit``-like objects (``experiment``, ``score``)."""
        self.hits = list(hits)
        table = self.query_one("#search-hits", DataTable)
        table.clear()
        for index, hit in enumerate(self.hits):
            e = hit.experiment
            label = e.name or e.id
            if e.hypothesis:
                label = f"{label}: {e.hypothesis}"
            table.add_row(
                Text(f"{hit.score:.3f}", style="bold", justify="right"),
                e.line or "—",
                status_text(e.status),
                Text(format_value(primary_value(e)), justify="right"),
                label,
                key=str(index),
            )
        self.set_status(note or f"{len(self.hits)} hits")
        if self.hits:
            table.move_cursor(row=0)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if text:
            self.post_message(self.SearchRequested(text))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        index = int(str(event.row_key.value))
        if 0 <= index < len(self.hits):
            self.post_message(self.HitChosen(self.hits[index].experiment))
