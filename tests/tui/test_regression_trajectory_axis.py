"""Issue 17, item 8 in the TUI: the trajectory chart's y-axis is set by the good results; a
chance-level value is pinned to the edge and counted, not allowed to squash the rest."""

from __future__ import annotations

from textual.app import App, ComposeResult

from soma_tui._lines import TrajectoryChart


class _ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TrajectoryChart(id="chart")


async def test_regression_tui_trajectory_axis_ignores_a_chance_level_trial() -> None:
    app = _ChartApp()
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(TrajectoryChart)
        chart.line, chart.direction = "digits", "maximize"
        chart.values = [0.95, 0.96, 0.1, 0.97, 0.96, 0.98]
        chart.best_so_far = [0.95, 0.96, 0.96, 0.97, 0.97, 0.98]
        chart._draw()
        await pilot.pause()
        assert chart.ylim is not None and 0.8 < chart.ylim[0] < 0.95  # not down at 0.1
        assert chart.ylim[1] >= 0.98
        # A metric to minimize: a broken run's huge error is pinned to the top instead.
        chart.direction = "minimize"
        chart.values = [0.30, 0.28, 9.0, 0.27, 0.26]
        chart.best_so_far = [0.30, 0.28, 0.28, 0.27, 0.26]
        chart._draw()
        await pilot.pause()
        assert chart.ylim is not None and chart.ylim[1] < 1.0 and chart.ylim[0] <= 0.26
