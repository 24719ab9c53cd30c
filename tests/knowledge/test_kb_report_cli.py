"""Markdown reports with their plot, and the ``soma kb`` commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import exp, record_series
from typer.testing import CliRunner

from soma.cli import _register, app
from soma.errors import ValidationError
from soma.knowledge import (
    Experiment,
    HashingEmbedder,
    KnowledgeBase,
    MiniLMEmbedder,
    ResearchLine,
    detect_change_points,
)

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
    assert report.path == tmp_path / "out" / "digits" / "digits-report.md"
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
    # One summary row per experiment, in order, each naming it; a row with a value names the
    # experiment its "best so far" came from, a failed one has neither.
    summary = md.split("## Summary")[1].split("## Best")[0]
    rows = [r for r in summary.splitlines() if r.startswith("| ") and not r.startswith("| # ")]
    assert len(rows) == len(ids)
    for row, exp_id in zip(rows, ids, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"`{exp_id}`", row
        if cells[3] == "ok":
            assert re.fullmatch(r"\d\.\d+", cells[4]), row
            assert re.fullmatch(r"\d\.\d+ \(exp-[0-9a-z]{16}\)", cells[5]), row
        else:
            assert cells[3:6] == ["failed", "—", "—"], row


_EXP_ID = re.compile(r"exp-[0-9a-z]{16}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def _untraced_numbers(markdown: str) -> list[str]:
    """Lines holding a number that names no experiment id.

    A line is traced if it names an id itself, if it is a row of a table whose header names
    one, or if it is in a section that opens by saying which experiment everything in it is
    from. Times, headings, the image link and the line counting the summary's rows (which
    lists every id) hold no experiment's number.
    """
    untraced: list[str] = []
    header_ids = False
    section_id = False
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            section_id = False
            continue
        if "Everything below is from `" in line and _EXP_ID.search(line):
            section_id = True
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            header_ids = bool(_EXP_ID.search(line))  # a table starts: its header row
        stripped = _TIME.sub("", _EXP_ID.sub("", line))
        if not re.search(r"\d", stripped) or _EXP_ID.search(line) or section_id:
            continue
        if line.startswith("|") and header_ids:
            continue
        exempt = ("# ", "![", "- Generated:", "- Experiments:")
        if line.startswith(exempt) or set(line) <= set("|-"):
            continue
        untraced.append(line)
    return untraced


def test_every_number_in_a_report_names_its_experiment(tmp_path: Path) -> None:
    kb, ids = _filled(tmp_path / "kb.sqlite")
    with kb:
        best = kb.best("digits")
        assert best is not None
        kb.update(
            best.id,
            pipeline_spec={"chain": ["Scale()", "LogReg(C=10.0)"]},
            pipeline_summary="Scale >> LogReg(C=10)",
            seed=42,
            code_fingerprint="c0de1234",
            duration_s=12.5,
            metrics={"accuracy": 0.92, "loss": 0.25},
        )
        kb.record(exp("stopped early", line="digits", i=21, status="pruned"))
        report = kb.generate_report("digits", tmp_path / "out")
    md = report.markdown
    assert "Everything below is from `" + ids[8] + "`" in md  # the best section's source
    assert _untraced_numbers(md) == []
    assert len([line for line in md.splitlines() if line.startswith("- At `")]) == 1
    means = [line for line in md.splitlines() if "is the mean over:" in line]
    assert len(means) == 2
    assert all(f"`{i}`" in means[0] for i in ids[:5])
    assert all(f"`{i}`" in means[1] for i in ids[5:10])
    trend = next(line for line in md.splitlines() if line.startswith("- Trend"))
    assert f"`{ids[2]}` … `{ids[9]}`" in trend  # the last 8 successful experiments
    # The checker itself catches a number without its experiment.
    assert _untraced_numbers(md + "\n\n## Extra\n\n- mean accuracy 0.81\n") == [
        "- mean accuracy 0.81"
    ]


def _red_columns(png: Path) -> np.ndarray:
    """Per image column, how many pixels are clearly red (change points are #c44e52; a thin
    anti-aliased line blends it with white, so no exact colour match)."""
    from matplotlib.image import imread

    pixels = imread(png)[:, :, :3]
    red = pixels[:, :, 0] - pixels[:, :, 1:].max(axis=2) > 0.2
    return red.sum(axis=0)


def test_plot_marks_change_points(tmp_path: Path) -> None:
    kb, _ = _filled(tmp_path / "kb.sqlite")
    with kb:
        kb.create_line("flat", metric="accuracy", direction="maximize")
        record_series(kb, "flat", [0.8, 0.81, 0.79, 0.8, 0.81, 0.8, 0.79, 0.8, 0.81, 0.8])
        assert kb.change_points("flat") == [] and len(kb.change_points("digits")) == 1
        marked = kb.generate_report("digits", tmp_path / "out")
        plain = kb.generate_report("flat", tmp_path / "out")
    assert marked.plot_path is not None and plain.plot_path is not None
    columns = _red_columns(marked.plot_path)
    # One dashed vertical line: a column with many red pixels, between the 5th and 6th points
    # (around the middle of the plot), and nothing red on the plot without change points.
    assert columns.max() > 100
    x = int(np.argmax(columns)) / columns.size
    assert 0.35 < x < 0.65
    assert _red_columns(plain.plot_path).max() == 0


def test_report_goes_beside_the_knowledge_base_by_default(tmp_path: Path) -> None:
    kb, _ = _filled(tmp_path / "state" / "kb.sqlite")
    with kb:
        report = kb.generate_report("digits")
    assert report.path == tmp_path / "state" / "reports" / "digits" / "digits-report.md"
    assert report.path.is_file() and report.plot_path is not None and report.plot_path.is_file()
    with KnowledgeBase(":memory:", embedder=HashingEmbedder()) as memory:
        memory.create_line("l", metric="accuracy", direction="maximize")
        with pytest.raises(ValidationError) as info:
            memory.generate_report("l")
        assert info.value.field == "out_dir"


def test_report_for_an_empty_line(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("empty", metric="loss", direction="minimize")
        report = kb.generate_report("empty", tmp_path / "out")
    assert report.plot_path is None
    assert "No experiments recorded" in report.markdown
    assert not (tmp_path / "out" / "empty" / "empty-trajectory.png").exists()


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
    assert line["status"] == "active"
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
    assert code == 0 and (tmp_path / "digits" / "digits-report.md").is_file()
    assert (tmp_path / "digits" / "digits-trajectory.png").read_bytes()[:8] == PNG_MAGIC
    code, out = _run("kb", "report", "digits", "--project", str(project), "--json")
    assert code == 0, out
    made = json.loads(out)
    assert made["line"] == "digits"
    assert made["path"] == str(project / ".soma" / "reports" / "digits" / "digits-report.md")
    assert Path(made["plot_path"]).read_bytes()[:8] == PNG_MAGIC
    code, out = _run("kb", "lines", "--project", str(project))
    assert code == 0 and "digits" in out


def test_cli_query_by_meaning_with_the_default_model(
    tmp_path: Path, minilm: MiniLMEmbedder
) -> None:
    """``soma kb query`` uses the real all-MiniLM-L6-v2 unless told otherwise."""
    _register()
    unrelated = [
        "standardized the input features before the classifier",
        "used a random forest with 200 trees",
        "reduced the data to 16 principal components",
    ]
    related = "loss exploded with a large step size"
    with KnowledgeBase(tmp_path / ".soma" / "kb.sqlite", embedder=minilm) as kb:
        kb.create_line("nn", metric="loss", direction="minimize")
        kb.create_line("trees", metric="loss", direction="minimize")
        ids = kb.record_many(
            [exp(f"t{i}", line="trees", i=i, hypothesis=t) for i, t in enumerate(unrelated)]
            + [exp("t9", line="nn", i=9, hypothesis=related, metrics={"loss": 9.0})]
        )
    query = "the learning rate was too high and training diverged"
    code, out = _run("kb", "query", query, "--project", str(tmp_path), "--json")
    assert code == 0, out
    hits = json.loads(out)
    assert hits[0]["experiment"]["id"] == ids[3]
    assert hits[0]["score"] > max(h["score"] for h in hits[1:])
    code, out = _run("kb", "query", query, "--project", str(tmp_path), "--line", "trees", "--json")
    assert code == 0 and ids[3] not in {h["experiment"]["id"] for h in json.loads(out)}
    code, out = _run(
        "kb", "query", query, "--project", str(tmp_path), "--where", "loss > 1", "--json"
    )
    assert [h["experiment"]["id"] for h in json.loads(out)] == [ids[3]]
    code, out = _run("kb", "query", query, "--project", str(tmp_path))
    assert code == 0 and ids[3] in out and "score" in out
    code, out = _run("kb", "query", "t1", "--project", str(tmp_path), "--embedder", "hashing")
    assert code == 0 and ids[1] in out
    code, out = _run("kb", "query", "x", "--project", str(tmp_path), "--embedder", "word2vec")
    assert code == 1 and "--embedder" in out


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


def _line_of(values: list[float | None], families: list[str]) -> list[Experiment]:
    """Experiments an hour apart: None is a failed one; family i's pipeline summary."""
    out = []
    for i, (value, family) in enumerate(zip(values, families, strict=True)):
        ok = value is not None
        out.append(
            exp(
                f"{family} #{i}",
                line="digits",
                i=i,
                id=f"exp-{i:016d}",
                status="ok" if ok else "failed",
                error=None if ok else "ValueError: boom",
                metrics={"accuracy": value} if ok else {},
                pipeline_summary=f"{family}(C={1.0 + i / 3})",
                params={"C": 1.0 + i / 3, "gamma": 10.0 ** -(i % 4)},
            )
        )
    return out


def test_regression_trajectory_plot_for_a_paper(tmp_path: Path) -> None:
    """Issue 17, item 8: a chance-level trial does not set the y-axis (it is pinned to the
    edge and counted), failed ones are marked, pipeline families have a legend, and
    change-point labels sit above the axes, not over the data."""
    from soma.knowledge._analytics import change_points, trajectory
    from soma.knowledge._plots import plot_trajectory

    values = [0.90, 0.91, 0.1, 0.90, 0.92, None, 0.91, 0.96, 0.97, 0.96, 0.97, 0.96]
    families = ["Scale >> LogReg"] * 7 + ["MinMax >> SVC"] * 5
    exps = _line_of(values, families)
    line = ResearchLine(name="digits", metric="accuracy", direction="maximize")
    points = trajectory(exps, "accuracy", "maximize")
    cps = change_points(exps, "accuracy", "maximize")
    assert [cp.experiment_id for cp in cps] == [exps[7].id]
    fig = plot_trajectory(tmp_path / "t.png", line, exps, points, cps)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert 0.7 < low < 0.9 and 0.97 < high < 1.0  # set by the good results, not by 0.1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Scale >> LogReg" in legend and "MinMax >> SVC" in legend
    assert "1 below the axis (to 0.1)" in legend and "1 failed" in legend
    labels = [t for t in ax.texts if t.get_text().startswith("C")]
    assert [t.get_text() for t in labels] == ["C1"]
    assert labels[0].xy[1] == 1.0 and labels[0].get_va() == "bottom"  # above the axes
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG_MAGIC


def test_regression_report_text_columns_and_floats(tmp_path: Path) -> None:
    """Issue 17, item 10: the pipeline has its own column, whole, not repeated in the name;
    floats are written to 4 significant digits."""
    from soma.knowledge._line_report import write_report

    pipeline = "StandardScale >> PCA(n_components=0.95) >> SVC(C=0.3177840006884068, " + (
        "gamma=0.0012703, kernel='rbf', class_weight='balanced', tol=0.001)"
    )
    named = exp(
        pipeline,
        line="digits",
        id="exp-0000000000000001",
        metrics={"accuracy": 0.5231404020000809},
        pipeline_summary=pipeline,
        params={"svc.C": 0.3177840006884068, "svc.kernel": "rbf"},
        duration_s=1.23456789,
    )
    line = ResearchLine(name="digits", metric="accuracy", direction="maximize")
    md = write_report(line, [named], tmp_path).markdown
    row = next(r for r in md.splitlines() if r.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "0.5231" and cells[5].startswith("0.5231 (")
    assert cells[7] == ""  # the name only repeated the pipeline
    assert cells[8] == pipeline.replace("0.3177840006884068", "0.3178").replace(
        "0.0012703", "0.00127"
    )
    assert "…" not in row and "0.5231404020000809" not in md and "0.3177840006884068" not in md
    assert "| svc.C | `0.3178` |" in md and "duration s: `1.235`" in md


def test_regression_change_point_not_fired_by_one_bad_trial() -> None:
    """Issue 17, item 10: one chance-level trial among steady ones is no change point (it
    made two), at the start, middle or end; a real shift is still found."""
    steady = [0.95, 0.96, 0.94, 0.95, 0.96, 0.95, 0.96, 0.95, 0.94, 0.95]
    for at in (0, 4, 8, 9):
        values = list(steady)
        values[at] = 0.1
        assert detect_change_points(values) == [], at
    two_apart = [0.95, 0.96, 0.94, 0.1, 0.96, 0.1, 0.96, 0.95, 0.94, 0.95]
    assert detect_change_points(two_apart) == []
    assert detect_change_points([0.5, 0.52, 0.49, 0.51, 0.5, 0.8, 0.82, 0.79, 0.81, 0.8]) == [5]
    assert detect_change_points([0.5, 0.52, 0.49, 0.51, 0.5, 0.51, 0.5, 0.8, 0.81]) == [7]


def test_regression_report_draws_optuna_views(tmp_path: Path) -> None:
    """Issue 17, item 9: the report shows Optuna's parameter importances, parallel
    coordinates, slice, contour and history for the line, each a PNG beside it; a view
    that cannot be drawn says why."""
    from soma.knowledge._line_report import write_report

    values = [0.90, 0.91, 0.93, 0.90, 0.92, None, 0.91, 0.96, 0.97, 0.96, 0.97, 0.96]
    exps = _line_of(values, ["Scale >> LogReg"] * 12)
    line = ResearchLine(name="digits", metric="accuracy", direction="maximize")
    report = write_report(line, exps, tmp_path)
    md = report.markdown
    for kind, title in [
        ("history", "Optimisation history"),
        ("importances", "Parameter importances"),
        ("parallel", "Parallel coordinates"),
        ("slice", "Slice plot"),
        ("contour", "Contour plot"),
    ]:
        png = report.path.parent / f"digits-{kind}.png"
        assert f"### {title}" in md and f"]({png.name})" in md, kind
        assert png.read_bytes()[:8] == PNG_MAGIC, kind
    one_param = [e.model_copy(update={"params": {"C": e.params["C"]}}) for e in exps]
    md = write_report(line, one_param, tmp_path).markdown
    assert "Not drawn: needs 2 parameters varying in the same trials." in md
    assert not (report.path.parent / "digits-contour.png").exists()  # no stale figure
