"""Markdown reports with their plot, and the ``soma kb`` commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kb_helpers import exp, record_series
from typer.testing import CliRunner

from soma.cli import _register, app
from soma.knowledge import HashingEmbedder, KnowledgeBase

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _filled(path: Path) -> tuple[KnowledgeBase, list[str]]:
    kb = KnowledgeBase(path, embedder=HashingEmbedder())
    kb.create_line("digits", metric="accuracy", direction="maximize", description="Digits.")
    values = [0.70, 0.71, 0.69, 0.70, 0.71, 0.90, 0.91, 0.90, 0.92, 0.91]
    params = [{"C": 1.0}] * 5 + [{"C": 10.0}] * 5
    ids = record_series(kb, "digits", values, params=params)
    ids.append(
        kb.record(
            exp(
                "broken",
                line="digits",
                i=20,
                status="failed",
                error="Traceback ...\nValueError: n_components=99 > n_features",
            )
        )
    )
    return kb, ids


def test_report_is_traceable_and_has_its_plot(tmp_path: Path) -> None:
    kb, ids = _filled(tmp_path / "kb.sqlite")
    with kb:
        report = kb.generate_report("digits", tmp_path / "out")
    assert report.path == tmp_path / "out" / "digits-report.md"
    assert report.path.read_text(encoding="utf-8") == report.markdown
    assert report.plot_path is not None and report.plot_path.parent == report.path.parent
    assert report.plot_path.read_bytes()[:8] == PNG_MAGIC
    md = report.markdown
    for heading in ("## Summary", "## Best configuration", "## Trajectory", "## Change points"):
        assert heading in md
    assert f"![accuracy trajectory]({report.plot_path.name})" in md
    # Every experiment appears in the table with its id; the best names its experiment.
    for exp_id in ids:
        assert f"`{exp_id}`" in md
    assert f"**Best accuracy: 0.92** — experiment `{ids[8]}`" in md
    assert "| C | `10.0` |" in md
    # The change point names the experiments around it and what changed.
    cp_line = next(line for line in md.splitlines() if line.startswith("- At `"))
    assert cp_line.startswith(f"- At `{ids[5]}`")
    assert ids[0] in cp_line and ids[4] in cp_line and ids[9] in cp_line
    assert "C 1 → 10" in cp_line
    # The failure and its reason (last line of the error).
    assert f"| `{ids[-1]}` |" in md and "n_components=99 > n_features" in md
    # Each table row with a number names the experiment it came from.
    for row in md.split("## Summary")[1].split("## Best")[0].splitlines()[4:]:
        if re.search(r"\d\.\d", row):
            assert re.search(r"`exp-[0-9a-z]{16}`", row), row


def test_report_for_an_empty_line(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("empty", metric="loss", direction="minimize")
        report = kb.generate_report("empty", tmp_path / "out")
    assert report.plot_path is None
    assert "No experiments recorded" in report.markdown
    assert not (tmp_path / "out" / "empty-trajectory.png").exists()


@pytest.fixture(scope="module")
def cli_kb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    _register()
    project = tmp_path_factory.mktemp("project")
    kb, ids = _filled(project / ".soma" / "kb.sqlite")
    kb.close()
    return project, ids


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_cli_list_show_lines(cli_kb: tuple[Path, list[str]]) -> None:
    project, ids = cli_kb
    code, out = _run("kb", "list", "--project", str(project), "--json", "-n", "3")
    assert code == 0, out
    assert [e["id"] for e in json.loads(out)] == [ids[-1], ids[9], ids[8]]
    code, out = _run("kb", "list", "--project", str(project), "--status", "failed")
    assert code == 0 and ids[-1] in out and "broken" in out and ids[0] not in out
    code, out = _run("kb", "show", ids[3], "--kb", str(project / ".soma" / "kb.sqlite"))
    assert code == 0 and ids[3] in out and "accuracy" in out
    code, out = _run("kb", "show", ids[3], "--project", str(project), "--json")
    assert json.loads(out)["metrics"] == {"accuracy": 0.7}
    code, out = _run("kb", "lines", "--project", str(project), "--json")
    (line,) = json.loads(out)
    assert line["name"] == "digits" and line["best_experiment_id"] == ids[8]
    assert line["n_experiments"] == 11 and line["trend"] in ("improving", "plateaued")
    code, out = _run("kb", "lines", "--project", str(project))
    assert code == 0 and "digits" in out and ids[8] in out


def test_cli_query_and_report(cli_kb: tuple[Path, list[str]], tmp_path: Path) -> None:
    project, ids = cli_kb
    code, out = _run(
        "kb", "query", "--project", str(project), "--where", "accuracy>0.905", "--json"
    )
    assert code == 0, out
    assert {h["experiment"]["id"] for h in json.loads(out)} == {ids[6], ids[8], ids[9]}
    assert all(h["score"] is None for h in json.loads(out))
    code, out = _run("kb", "report", "digits", "--project", str(project), "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "digits-report.md").is_file()
    assert (tmp_path / "digits-trajectory.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_errors_are_readable(cli_kb: tuple[Path, list[str]], tmp_path: Path) -> None:
    project, _ = cli_kb
    code, out = _run("kb", "show", "exp-nope", "--project", str(project))
    assert code == 1 and "no experiment with id 'exp-nope'" in out
    code, out = _run("kb", "query", "--project", str(project), "--where", "accuracy >")
    assert code == 1 and "where:" in out and "position 10" in out
    code, out = _run("kb", "report", "nope", "--project", str(project))
    assert code == 1 and "unknown research line 'nope'" in out
    code, out = _run("kb", "list", "--project", str(tmp_path / "elsewhere"))
    assert code == 1 and "no knowledge base at" in out
    assert not (tmp_path / "elsewhere").exists()  # reading never creates a KB
