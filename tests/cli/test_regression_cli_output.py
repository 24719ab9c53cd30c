"""Issue 17, items 11 and 17: command output in logs and narrow terminals, and its wording."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import soma
from typer.testing import CliRunner

from soma.cli import app
from soma.knowledge import Experiment, HashingEmbedder, KnowledgeBase
from soma.project import load_project

LONG_LINE = "preprocessing-for-the-digits-classifier"


def _seed(project: Path, n: int = 5) -> list[str]:
    with KnowledgeBase(load_project(project).kb_path, embedder=HashingEmbedder()) as kb:
        kb.create_line(LONG_LINE, metric="accuracy", direction="maximize")
        return [
            kb.record(
                Experiment(
                    name=f"trial {i}",
                    line=LONG_LINE,
                    metrics={"accuracy": 0.9 + i / 100},
                    hypothesis="Standardising before the SVC helps " * 4,
                )
            )
            for i in range(n)
        ]


def test_regression_no_hard_wraps_when_not_a_terminal(digits_project: Path) -> None:
    # Rich wrapped every message at 80 columns when output was not a terminal: a one-line
    # error became three lines in logs and CI.
    long_name = "x" * 150
    code, out = soma("kb", "report", long_name, "-p", str(digits_project))
    assert code == 1
    _seed(digits_project)
    code, out = soma("kb", "report", long_name, "-p", str(digits_project))
    assert code == 1 and len(out.strip().splitlines()) == 1 and long_name in out
    code, out = soma("kb", "report", LONG_LINE, "-p", str(digits_project))
    assert code == 0
    written = next(line for line in out.splitlines() if line.startswith("report written to"))
    assert Path(written.removeprefix("report written to ").strip()).is_file()


def test_regression_ids_never_truncated_at_80_columns(digits_project: Path) -> None:
    ids = _seed(digits_project)
    runner = CliRunner()
    for command in (["kb", "lines"], ["kb", "list"]):
        result = runner.invoke(app, [*command, "-p", str(digits_project)], env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
        assert command[1] == "list" or LONG_LINE in result.output
        shown = [i for i in ids if i in result.output]
        assert shown == [ids[-1]] if command[1] == "lines" else sorted(shown) == sorted(ids)


def test_regression_small_wording(digits_project: Path) -> None:
    _seed(digits_project)
    p = str(digits_project)
    # "kb list" said "3 experiments" when it showed the newest 3 of 5.
    code, out = soma("kb", "list", "-p", p, "-n", "3")
    assert code == 0 and "newest 3 of 5" in out
    code, out = soma("kb", "list", "-p", p)
    assert code == 0 and "5 experiments" in out
    # An unknown line suggested a Python call from the CLI.
    code, out = soma("kb", "list", "-p", p, "--line", "nope")
    assert code == 1 and "create_line(" not in out
    assert f"known: '{LONG_LINE}'" in out and "soma study run SPEC --line NAME" in out


def test_regression_misspelt_metric_in_where_names_the_metrics(digits_project: Path) -> None:
    # 'acc > 0.9' silently matched nothing.
    _seed(digits_project)
    code, out = soma("kb", "query", "-p", str(digits_project), "-w", "acc > 0.9")
    assert code == 1
    assert "no experiment records a metric 'acc'; did you mean 'accuracy'?" in out
    code, out = soma("kb", "query", "-p", str(digits_project), "-w", "accuracy > 0.925")
    assert code == 0 and "2 results" in out
    with KnowledgeBase(load_project(digits_project).kb_path, embedder=HashingEmbedder()) as kb:
        try:
            kb.query(where="params.alpah < 1")
        except Exception as exc:
            raise AssertionError("no experiment has params: nothing to compare with") from exc


def test_regression_parameter_errors_once_and_case_slips_suggested(digits_project: Path) -> None:
    from soma.errors import ValidationError
    from soma.experiments import build_graph

    project = load_project(digits_project)

    def message(spec: str, params: dict | None = None) -> str:
        try:
            build_graph(spec, project=project, params=params)
        except ValidationError as exc:
            return str(exc)
        raise AssertionError(f"{spec} built")

    # The known names were listed twice ("has C, gamma (node parameters: svc.C, svc.gamma)").
    text = message("StandardScale() >> SVC()", {"svc.Cx": 1})
    assert text.count("gamma") == 1 and "has C, gamma" in text
    # No did-you-mean for case-only mistakes.
    assert "unknown filter 'Svc' (did you mean 'SVC'?)" in message("StandardScale() >> Svc()")
    assert "unknown parameter 'c'; did you mean 'C'?" in message("SVC(c=1.0)")
    code, out = soma("study", "run", "StandardScale() >> Svc()", "-p", str(digits_project))
    assert code == 1 and "did you mean 'SVC'?" in out
