"""The dashboard headless: lines, experiments, chart, filters, empty and busy KBs."""

from __future__ import annotations

import threading
from pathlib import Path

from tui_helpers import PREP_VALUES, REG_VALUES, seed, wait_until

from soma.knowledge import Experiment, HashingEmbedder, KnowledgeBase
from soma_tui import SomaApp
from soma_tui._experiments import ExperimentDetail, ExperimentsTable
from soma_tui._lines import LinesTable, TrajectoryChart


def _cells(table: ExperimentsTable | LinesTable, column: str) -> list[str]:
    return [str(table.get_cell(row_key, column)) for row_key in table.rows]


def _detail_text(app: SomaApp) -> str:
    return app.query_one("#detail", ExperimentDetail).plain_text()


async def test_seeded_kb_shows_lines_experiments_and_chart(seeded_kb, embedder) -> None:
    path, _ids = seeded_kb
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        lines = app.query_one("#lines-table", LinesTable)
        table = app.query_one("#experiments-table", ExperimentsTable)
        await wait_until(pilot, lambda: table.row_count == len(PREP_VALUES), what="experiments")
        assert _cells(lines, "line") == ["preprocessing", "regularisation"]
        assert _cells(lines, "metric") == ["accuracy ↑", "rmse ↓"]
        assert _cells(lines, "best") == ["0.92", "0.85"]
        assert _cells(lines, "n") == [str(len(PREP_VALUES)), str(len(REG_VALUES))]
        assert _cells(lines, "trend")[0] == "↗"  # the seeded accuracy keeps rising
        assert len(_cells(lines, "spark")[0]) == len([v for v in PREP_VALUES if v is not None])
        # Newest first by default; the failed one is shown with its status.
        assert _cells(table, "name") == [f"prep-{i}" for i in reversed(range(len(PREP_VALUES)))]
        assert _cells(table, "status").count("failed") == 1
        chart = app.query_one("#chart", TrajectoryChart)
        assert chart.line == "preprocessing"
        assert chart.values == [v for v in PREP_VALUES if v is not None]
        assert chart.best_so_far[-1] == 0.92
        await wait_until(pilot, lambda: chart.change_indices, what="change points")
        assert chart.change_indices == [4]  # the jump when PCA went from 8 to 32 components
        assert "pca.n_components 8 → 32" in str(app.query_one("#changes").render())
        assert app.last_error is None


async def test_selecting_a_line_updates_table_and_chart(seeded_kb, embedder) -> None:
    path, _ = seeded_kb
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#experiments-table", ExperimentsTable)
        chart = app.query_one("#chart", TrajectoryChart)
        await wait_until(pilot, lambda: chart.line == "preprocessing", what="first line")
        app.query_one("#lines-table", LinesTable).focus()
        await pilot.press("down")
        await wait_until(pilot, lambda: chart.line == "regularisation", what="chart update")
        assert chart.values == REG_VALUES
        assert chart.best_so_far == [1.0, 0.9, 0.85, 0.85]  # rmse: lower is better
        assert sorted(_cells(table, "name")) == [f"ridge-{i}" for i in range(len(REG_VALUES))]
        assert table.border_title == "Experiments · regularisation"
        await pilot.press("up")
        await wait_until(pilot, lambda: chart.line == "preprocessing", what="chart back")
        assert table.row_count == len(PREP_VALUES)


async def test_filter_sort_and_detail_pane(seeded_kb, embedder) -> None:
    path, _ids = seeded_kb
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#experiments-table", ExperimentsTable)
        await wait_until(pilot, lambda: table.row_count == len(PREP_VALUES), what="experiments")
        await pilot.press("f")  # jumps to the experiments tab and focuses the filter
        assert app.query_one("#tabs").active == "experiments"
        await pilot.press(*"status:failed")
        assert _cells(table, "name") == ["prep-3"]
        await pilot.press("enter")  # back to the table, failed experiment selected
        text = _detail_text(app)
        assert "ValueError: n_components=64 must be <= 63" in text
        assert "prep-2" in text  # its parent, by name
        assert "PCA(n_components=8)" in text  # pipeline tree leaf
        # Clear the filter, then sort by value (best first for a maximised metric).
        app.query_one("#filter").value = ""
        await pilot.pause()
        table.sort_by("value")
        assert _cells(table, "name")[:2] == ["prep-8", "prep-6"]
        assert _cells(table, "name")[-1] == "prep-3"  # no value: last
        table.sort_by("value")  # same column again: reversed, missing values still last
        assert _cells(table, "name")[0] == "prep-0"
        # Clicking a header sorts too.
        name_x = 1 + sum(c.get_render_width(table) for c in list(table.columns.values())[:2])
        await pilot.click(ExperimentsTable, offset=(name_x + 1, 1))  # inside the round border
        await pilot.pause()
        assert table.sort_column == "name" and not table.sort_reverse
        assert _cells(table, "name")[:2] == ["prep-0", "prep-1"]
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause()
        assert table.selected.name in _detail_text(app)


async def test_empty_then_concurrently_written_kb(tmp_path: Path, embedder) -> None:
    path = tmp_path / "sub" / "kb.sqlite"  # does not exist yet: the app must wait, not create it
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.polls >= 3, what="a few polls")
        assert not path.exists()
        assert "no research lines yet" in str(app.query_one("#lines-empty").render())
        for tab in ("lines", "experiments", "agent", "search"):
            app.action_show_tab(tab)
            await pilot.pause()
        assert app.last_error is None
        # Another connection writes while the app polls.
        stop = threading.Event()

        def writer() -> None:
            with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
                seed(kb)
                for i in range(30):
                    if stop.is_set():
                        break
                    kb.record(
                        Experiment(
                            name=f"late-{i}", line="regularisation", metrics={"rmse": 0.8 - i / 100}
                        )
                    )

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            lines = app.query_one("#lines-table", LinesTable)
            await wait_until(pilot, lambda: lines.row_count == 2, what="lines to appear")
            thread.join(timeout=60)
            await wait_until(
                pilot,
                lambda: _cells(lines, "n")[-1] == str(len(REG_VALUES) + 30),
                what="all concurrent experiments",
            )
        finally:
            stop.set()
            thread.join(timeout=60)
        assert app.last_error is None


async def test_detail_pane_and_status_colours(seeded_kb, embedder) -> None:
    path, ids = seeded_kb
    app = SomaApp(path, embedder=embedder, poll_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#experiments-table", ExperimentsTable)
        await wait_until(pilot, lambda: table.row_count == len(PREP_VALUES), what="experiments")
        styles = {
            str(table.get_cell(key, "name")): table.get_cell(key, "status").style
            for key in table.rows
        }
        assert styles["prep-3"] == "bold red" and styles["prep-5"] == "green"
        await pilot.press("f", *"verdict:supported", "enter")
        assert _cells(table, "name") == ["prep-5"]
        text = _detail_text(app)
        for expected in (
            "PCA with 32 components",  # hypothesis
            "pipeline: Chain",
            "PCA(n_components=32)",
            "param pca.n_components = 32",
            "metric accuracy = 0.9 (primary)",
            f"parent prep-4 ({ids['preprocessing'][4]})",
            "action tune",
            "verdict supported",
        ):
            assert expected in text, expected
