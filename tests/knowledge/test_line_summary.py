"""One line summary (soma.knowledge.summarize_line), the same in the CLI, the tools and the TUI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kb_helpers import exp, record_series
from typer.testing import CliRunner

from soma.cli import _register, app
from soma.errors import ValidationError
from soma.knowledge import HashingEmbedder, KnowledgeBase, Trend, summarize_line
from soma_tools._line_stats import LineStatsCache
from soma_tui._data import load_lines


def _fill(kb: KnowledgeBase) -> dict[str, list[str]]:
    kb.create_line("acc", metric="accuracy", direction="maximize")
    kb.create_line("loss", metric="mse", direction="minimize")
    ids = {
        "acc": record_series(kb, "acc", [0.5, 0.7, 0.9, 0.9, 0.6]),  # a tie: the earliest wins
        "loss": record_series(kb, "loss", [0.9, 0.4, 0.6], metric="mse"),
    }
    failed = exp("broken", line="loss", i=9, status="failed", error="boom")
    ids["loss"].append(kb.record(failed))
    kb.create_line("empty", metric="accuracy", direction="maximize")
    return ids


def test_summary_of_a_line(kb: KnowledgeBase) -> None:
    ids = _fill(kb)
    acc = summarize_line(kb, "acc")
    assert (acc.n_experiments, acc.best_value, acc.best_experiment_id) == (5, 0.9, ids["acc"][2])
    assert acc.best is not None and acc.best.id == ids["acc"][2]
    assert acc.last is not None and acc.last.id == ids["acc"][4]
    assert acc.values == (0.5, 0.7, 0.9, 0.9, 0.6) and acc.direction == "maximize"
    loss = summarize_line(kb, kb.get_line("loss"))  # a ResearchLine works too
    assert loss.n_experiments == 4 and loss.best_value == 0.4  # minimize; failed counted
    assert loss.last is not None and loss.last.status == "failed"
    assert loss.best is not None and loss.best.id == ids["loss"][1]
    empty = summarize_line(kb, "empty")
    assert (empty.n_experiments, empty.best, empty.last, empty.best_value) == (0, None, None, None)
    assert empty.trend is Trend.UNKNOWN and empty.trend_name == "unknown"
    # Directions are declared, never contradicted (as for trajectory()).
    with pytest.raises(ValidationError, match="declares 'maximize'"):
        summarize_line(kb, "acc", "accuracy", direction="minimize")


def test_cli_tools_and_tui_show_the_same_summary(tmp_path: Path) -> None:
    path = tmp_path / ".soma" / "kb.sqlite"
    path.parent.mkdir()
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        _fill(kb)
        expected = {ln.name: summarize_line(kb, ln) for ln in kb.lines()}  # the one computation
        tools = {ln.name: LineStatsCache().get(kb, ln) for ln in kb.lines()}
        tui = {row.name: row for row in load_lines(kb)}
    _register()
    result = CliRunner().invoke(app, ["kb", "lines", "--project", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    cli = {row["name"]: row for row in json.loads(result.output)}
    assert set(cli) == set(tools) == set(tui) == set(expected) == {"acc", "loss", "empty"}
    for name, want in expected.items():
        shown = [
            (row["n_experiments"], row["best_value"], row["best_experiment_id"], row["trend"])
            for row in (cli[name],)
        ]
        shown.append(
            (
                tools[name].n_experiments,
                tools[name].best_value,
                tools[name].best_experiment_id,
                tools[name].trend_name,
            )
        )
        row = tui[name]
        shown.append((row.n_experiments, row.best_value, row.best_experiment_id, row.trend))
        assert (
            shown
            == [(want.n_experiments, want.best_value, want.best_experiment_id, want.trend_name)] * 3
        )
