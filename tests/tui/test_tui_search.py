"""Semantic search in the TUI with the real default embedding model (loaded once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable
from tui_helpers import ZCA_HYPOTHESIS, seed, wait_until

from soma.knowledge import KnowledgeBase
from soma_tui import SomaApp
from soma_tui._experiments import ExperimentsTable
from soma_tui._search_pane import SearchPane


@pytest.fixture(scope="session")
def minilm_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui-search") / "kb.sqlite"
    with KnowledgeBase(path, embedder="default") as kb:
        seed(kb)
    return path


async def test_search_finds_the_seeded_experiment_by_meaning(minilm_kb: Path) -> None:
    app = SomaApp(minilm_kb, poll_interval=0.2)  # embedder "default": all-MiniLM-L6-v2
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one("#search-pane", SearchPane)
        await pilot.press("slash")
        assert app.query_one("#tabs").active == "search"
        # No word in common with the seeded hypothesis: only meaning can find it.
        await pilot.press(*"decorrelate the image pixels before training", "enter")
        await wait_until(pilot, lambda: pane.hits, timeout=60, what="search results")
        top = pane.hits[0]
        assert top.experiment.hypothesis == ZCA_HYPOTHESIS
        assert 0.0 < top.score <= 1.0
        assert all(a.score >= b.score for a, b in zip(pane.hits, pane.hits[1:], strict=False))
        table = pane.query_one("#search-hits", DataTable)
        first_row = table.get_row_at(0)
        assert str(first_row[0]) == f"{top.score:.3f}" and "prep-6" in str(first_row[4])
        # Enter on the hit opens it in its line's experiments.
        table.focus()
        await pilot.press("enter")
        experiments = app.query_one("#experiments-table", ExperimentsTable)
        await wait_until(
            pilot,
            lambda: experiments.selected is not None and experiments.selected.name == "prep-6",
            what="the hit opened",
        )
        assert app.query_one("#tabs").active == "experiments"
        assert ZCA_HYPOTHESIS in app.query_one("#detail").plain_text()
