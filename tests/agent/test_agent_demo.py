"""``make demo`` (tools/demo.py): scaffold the digits example, run the agent, print the report."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "tools" / "demo.py"


def test_demo_scaffolds_runs_and_prints_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("soma_demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    folder = tmp_path / "demo"
    (folder / "stale").mkdir(parents=True)  # `make demo` starts afresh
    assert demo.main(folder, max_experiments=3, embedder="hashing") == 0
    out = capsys.readouterr().out
    assert not (folder / "stale").exists() and (folder / "soma.toml").exists()
    reports = list((folder / ".soma" / "runs").glob("run-*/report.md"))
    assert len(reports) == 1
    assert "iteration 3" in out and "after 3" in out
    assert f"Report: {reports[0]}" in out.replace("\n", "")
    assert "soma tui --project demo" in out
