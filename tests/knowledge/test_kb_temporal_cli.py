"""``soma kb drift``, ``soma kb novelty`` and ``kb query --verdict/--backend`` on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kb_helpers import exp
from test_kb_temporal import CONV, TREES
from typer.testing import CliRunner

from soma.cli import _register, app
from soma.knowledge import HashingEmbedder, KnowledgeBase


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _project(tmp_path: Path) -> tuple[Path, list[str]]:
    _register()
    now = datetime.now(UTC) - timedelta(hours=13)
    with KnowledgeBase(tmp_path / ".soma" / "kb.sqlite", embedder=HashingEmbedder()) as kb:
        kb.create_line("l", metric="accuracy", direction="maximize")
        ids = kb.record_many(
            [
                exp(
                    f"try {i}",
                    hypothesis=t,
                    started=now + timedelta(hours=i),
                    verdict="refuted" if i < 6 else "supported",
                    metrics={"accuracy": 0.7 if i < 6 else 0.9},
                )
                for i, t in enumerate(CONV + TREES)
            ]
        )
    return tmp_path, ids


def test_cli_drift_and_novelty(tmp_path: Path, backend: str) -> None:
    project, ids = _project(tmp_path)
    common = ["--project", str(project), "--embedder", "hashing", "--backend", backend]
    code, out = _run("kb", "drift", "l", *common, "--json")
    assert code == 0, out
    path = json.loads(out)
    assert [c["experiment_id"] for c in path["direction_changes"]] == [ids[6]]
    assert ("chronos" in path["source"]) == (backend == "chronos")
    code, out = _run("kb", "drift", "l", *common)
    assert code == 0, out
    assert ids[6] in out and "focus moved from" in out and "metric change at" in out

    code, out = _run("kb", "novelty", CONV[4], *common, "--line", "l", "--json")
    assert code == 0, out
    found = json.loads(out)
    assert found["novelty"] < 0.5 and found["nearest"][0]["experiment"]["id"] in ids[:6]
    code, out = _run("kb", "novelty", TREES[0], *common, "--json")
    assert code == 0, out
    assert json.loads(out)["novelty"] > 0.7  # the tree ideas were supported, not refuted
    code, out = _run("kb", "novelty", TREES[0], *common, "--any-verdict", "--json")
    assert json.loads(out)["novelty"] < 0.5
    code, out = _run("kb", "novelty", TREES[0], *common)
    assert code == 0 and out.startswith("novelty ")

    code, out = _run("kb", "query", "trees depth", *common, "--verdict", "refuted", "--json")
    assert code == 0, out
    assert {h["experiment"]["id"] for h in json.loads(out)} <= set(ids[:6])
    since = (datetime.now(UTC) - timedelta(hours=4, minutes=30)).isoformat()
    code, out = _run("kb", "query", "trees depth", *common, "--since", since, "--json")
    assert code == 0, out
    assert [h["experiment"]["id"] for h in json.loads(out)] != []
    assert {h["experiment"]["id"] for h in json.loads(out)} <= set(ids[8:])


def test_cli_backend_errors_are_one_line(tmp_path: Path, backend: str) -> None:
    project, _ = _project(tmp_path)
    code, out = _run("kb", "drift", "l", "--project", str(project), "--backend", "annoy")
    assert code == 1 and "backend" in out and "faiss, chronos" in out
    code, out = _run("kb", "drift", "nope", "--project", str(project), "--embedder", "hashing")
    assert code == 1 and "nope" in out
