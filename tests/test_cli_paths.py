"""Regression: ``soma kb`` / ``soma cache`` read ``[paths]`` from soma.toml.

They used to open ``PROJECT/.soma/kb.sqlite`` and ``PROJECT/.soma/cache`` whatever the
project declared, while the MCP server and the agent wrote where soma.toml said.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from soma.cache import Cache
from soma.cli import _register, app
from soma.knowledge import Experiment, HashingEmbedder, KnowledgeBase
from soma.project import init_project, project_paths


def _project_with_custom_paths(tmp_path: Path) -> Path:
    root = init_project(tmp_path / "research", example="wine")
    toml = root / "soma.toml"
    text = toml.read_text()
    assert 'kb = ".soma/kb.sqlite"' in text and 'cache = ".soma/cache"' in text
    toml.write_text(
        text.replace('kb = ".soma/kb.sqlite"', 'kb = "state/memory.sqlite"').replace(
            'cache = ".soma/cache"', 'cache = "state/cache"'
        )
    )
    return root


def _invoke(*args: str) -> tuple[int, str]:
    _register()
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_project_paths_follow_soma_toml(tmp_path: Path) -> None:
    root = _project_with_custom_paths(tmp_path)
    paths = project_paths(root)
    assert paths.kb_path == (root / "state" / "memory.sqlite").resolve()
    assert paths.cache_dir == (root / "state" / "cache").resolve()


def test_kb_list_reads_the_kb_that_soma_toml_names(tmp_path: Path) -> None:
    root = _project_with_custom_paths(tmp_path)
    kb = KnowledgeBase(root / "state" / "memory.sqlite", embedder=HashingEmbedder())
    kb.create_line("wine", metric="accuracy", direction="maximize")
    kb.record(Experiment(name="custom-path-exp", line="wine", metrics={"accuracy": 0.9}))
    kb.close()
    code, out = _invoke("kb", "list", "--project", str(root), "--json")
    assert code == 0, out
    assert [row["name"] for row in json.loads(out)] == ["custom-path-exp"]
    assert not (root / ".soma" / "kb.sqlite").exists()


def test_cache_stats_reads_the_cache_that_soma_toml_names(tmp_path: Path) -> None:
    root = _project_with_custom_paths(tmp_path)
    cache = Cache(root / "state" / "cache")
    cache.put("ab" * 32, [1, 2, 3])
    code, out = _invoke("cache", "stats", "--project", str(root), "--json")
    assert code == 0, out
    assert json.loads(out)["entries"] == 1


def test_a_broken_soma_toml_is_a_readable_error_naming_the_section(tmp_path: Path) -> None:
    root = _project_with_custom_paths(tmp_path)
    toml = root / "soma.toml"
    toml.write_text(toml.read_text().replace('kb = "state/memory.sqlite"', "kb = 3"))
    code, out = _invoke("kb", "list", "--project", str(root))
    assert code == 1
    assert "error:" in out and "soma.toml" in out
