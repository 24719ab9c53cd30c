"""The research-lines table and the trajectory chart of the selected line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from soma_tui._data import LineDetail, LineRow
from soma_tui._format import format_value, sparkline, trend_text

__all__ = ["LinesTable", "TrajectoryChart"]


class LinesTable(DataTable):
    """Research lines: name, metric and direction, best, trend, count, trajectory sparkline."""

    class LineSelected(Message):
        """The cursor moved to another research line."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    DEFAULT_CSS = """
    LinesTable { height: auto; max-height: 12; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_by_name: dict[str, LineRow] = {}
        self._signature: tuple[Any, ...] = ()

    def on_mount(self) -> None:
        self.add_column("line", key="line")
        self.add_column("metric", key="metric")
        self.add_column("best", key="best")
        self.add_column("trend", key="trend")
        self.add_column("n", key="n")
        self.add_column("trajectory", key="spark")
        self.border_title = "Research lines"

    @property
    def selected_line(self) -> str | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)

    def show(self, rows: Sequence[LineRow]) -> None:
        """Replace the rows, keeping the cursor on the same line; no-op if nothing changed."""
        signature = tuple((r.name, r.n_experiments, r.best_value, r.trend, r.values) for r in rows)
        if signature == self._signature:
            return
        self._signature = signature
        previous = self.selected_line
        self.rows_by_name = {row.name: row for row in rows}
        self.clear()
        for row in rows:
            arrow = "↑" if row.direction.startswith("max") else "↓"
            self.add_row(
                Text(row.name, style="bold"),
                f"{row.metric} {arrow}",
                Text(format_value(row.best_value), justify="right"),
                trend_text(row.trend),
                Text(str(row.n_experiments), justify="right"),
                Text(sparkline(row.values, 16), style="cyan"),
                key=row.name,
            )
        if previous in self.rows_by_name:
            self.move_cursor(row=self.get_row_index(previous), animate=False)
        elif rows:
            # First fill (or the selected line disappeared): announce the line under the cursor.
            self.post_message(self.LineSelected(rows[min(self.cursor_row, len(rows) - 1)].name))

    def select_line(self, name: str) -> None:
        if name in self.rows_by_name:
            self.move_cursor(row=self.get_row_index(name), animate=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.post_message(self.LineSelected(str(event.row_key.value)))


class TrajectoryChart(PlotextPlot):
    """Metric value of each experiment, best-so-far, and the change points of the line."""

    DEFAULT_CSS = """
    TrajectoryChart { height: 1fr; min-height: 8; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.line: str | None = None
        self.values: list[float] = []
        self.best_so_far: list[float] = []
        self.change_indices: list[int] = []
        self.direction = "maximize"
        self.ylim: tuple[float, float] | None = None  # set by the good results (see _draw)

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = "Trajectory"
        self._draw()

    def show(self, detail: LineDetail | None) -> None:
        """Plot ``detail``'s trajectory (or clear the chart when ``None``)."""
        if detail is None:
            self.line, self.values, self.best_so_far, self.change_indices = None, [], [], []
        else:
            points = [p for p in detail.trajectory if _finite(p.value)]
            self.line = detail.line.name
            self.values = [float(p.value) for p in points]
            self.best_so_far = [float(p.best_so_far) for p in points]
            self.change_indices = [int(cp.index) for cp in detail.change_points]
            self.direction = str(detail.line.direction)
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self.line is None:
            plt.title("select a research line")
        elif not self.values:
            plt.title(f"{self.line}: no finished experiments yet")
        else:
            from soma.knowledge._plots import axis_limits

            xs = list(range(1, len(self.values) + 1))
            # As in the report's plot: the axis is set by the good results; a chance-level or
            # broken value is pinned to the edge (▼/▲), or it would squash the rest flat.
            lo, hi = axis_limits(self.values, self.direction)
            pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-9)
            self.ylim = (lo - pad, hi + pad)
            inside = [(x, v) for x, v in zip(xs, self.values, strict=True) if lo <= v <= hi]
            below = [x for x, v in zip(xs, self.values, strict=True) if v < lo]
            above = [x for x, v in zip(xs, self.values, strict=True) if v > hi]
            best = [min(max(b, self.ylim[0]), self.ylim[1]) for b in self.best_so_far]
            plt.plot(xs, best, marker="braille", color="green", label="best so far")
            plt.scatter(
                [x for x, _ in inside], [v for _, v in inside], marker="●", color="cyan",
                label="experiment",
            )  # fmt: skip
            if below:
                plt.scatter(below, [self.ylim[0]] * len(below), marker="▼", color="red")
            if above:
                plt.scatter(above, [self.ylim[1]] * len(above), marker="▲", color="red")
            plt.ylim(*self.ylim)
            for index in self.change_indices:
                # Change point i: the first experiment of the new level is trajectory index i,
                # plotted at x = i + 1, so the boundary sits half-way before it.
                plt.vline(index + 0.5, "red")
            step = max(1, len(xs) // 8)
            plt.xticks(xs[::step])
            count = len(self.change_indices)
            plural = "" if count == 1 else "s"
            off = len(below) + len(above)
            edge = f", {off} off the axis (▼▲)" if off else ""
            plt.title(f"{self.line}: {len(xs)} results, {count} change point{plural}{edge}")
        self.border_subtitle = "│ red: change point" if self.change_indices else ""
        self.refresh()


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
