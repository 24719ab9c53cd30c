"""The SDK's real client over stdio against one spawned `soma mcp --project <example>` process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from soma_tools import TOOLS

EXPECTED_TOOLS = {
    "list_filters",
    "read_filter_source",
    "write_filter_source",
    "run_pipeline",
    "run_study",
    "record_experiment",
    "query_knowledge_base",
    "get_trajectory",
    "get_change_points",
    "list_research_lines",
    "promising_lines",
    "create_research_line",
    "generate_report",
}
BASELINE = "StandardScale() >> PCA(n_components=16) >> LogReg(C=1.0)"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_lists_exactly_the_13_tools_with_schemas(stdio: Any) -> None:
    tools = stdio.run(stdio.session.list_tools()).tools
    assert {t.name for t in tools} == EXPECTED_TOOLS
    assert len(tools) == 13
    for tool in tools:
        assert tool.description and len(tool.description) > 40
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    by_name = {t.name: t for t in tools}
    for name, spec in TOOLS.items():  # the schemas are the pydantic models', as published
        assert by_name[name].input_schema == spec.input_schema()
        assert by_name[name].output_schema == spec.output_schema()
        assert by_name[name].description == spec.description
    assert "spec" in by_name["run_pipeline"].input_schema["required"]
    assert by_name["list_filters"].annotations.read_only_hint is True


def test_run_pipeline_is_recorded_and_found_by_query(stdio: Any) -> None:
    result = stdio.call(
        "run_pipeline",
        {"spec": BASELINE, "hypothesis": "PCA to 16 components keeps digits separable"},
    )
    assert not result.is_error, stdio.text(result)
    out = result.structured_content
    assert 0.8 < out["metrics"]["accuracy"] <= 1.0
    assert out["primary_metric"] == "accuracy" and out["value"] == out["metrics"]["accuracy"]
    assert out["cache_misses"] > 0 and out["duration_s"] > 0
    assert "accuracy" in stdio.text(result)

    again = stdio.call("run_pipeline", {"spec": BASELINE})
    assert not again.is_error, stdio.text(again)
    assert again.structured_content["cache_hits"] > 0  # same pipeline: every node from cache
    assert again.structured_content["experiment_id"] != out["experiment_id"]

    found = stdio.call("query_knowledge_base", {"text": "PCA components digits separable"})
    assert not found.is_error, stdio.text(found)
    ids = [h["id"] for h in found.structured_content["hits"]]
    assert out["experiment_id"] in ids
    hit = next(h for h in found.structured_content["hits"] if h["id"] == out["experiment_id"])
    assert hit["status"] == "ok" and hit["value"] == pytest.approx(out["value"])

    resource = stdio.run(stdio.session.read_resource(f"soma://experiments/{out['experiment_id']}"))
    record = json.loads(resource.contents[0].text)
    assert record["hypothesis"] == "PCA to 16 components keeps digits separable"
    assert record["origin"] == "mcp" and record["status"] == "ok"


def test_run_study_runs_trials_and_sends_progress(stdio: Any) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    result = stdio.call(
        "run_study",
        {
            "spec": "StandardScale() >> LogReg()",
            "n_trials": 3,
            "sampler": "random",
            "seed": 1,
        },
        progress_callback=on_progress,
    )
    assert not result.is_error, stdio.text(result)
    out = result.structured_content
    assert out["n_trials"] == 3 and sum(out["trials_by_status"].values()) == 3
    assert out["best_value"] is not None and "log_reg.C" in out["best_params"]
    assert len(progress) >= 3 and progress[-1][0] == 3 and progress[-1][1] == 3
    listed = stdio.call("query_knowledge_base", {"origin": "study", "k": 10})
    assert len(listed.structured_content["hits"]) >= 3


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "not_py"])
def test_write_filter_source_refuses_paths_outside(
    stdio: Any, example_project: Path, tmp_path: Path, kind: str
) -> None:
    filters = example_project / "filters"
    outside = tmp_path / "outside"
    outside.mkdir()
    if kind == "symlink":
        link = filters / "escape"
        if not link.exists():
            os.symlink(outside, link)
    path = {
        "dotdot": "../x.py",
        "absolute": str(outside / "x.py"),
        "symlink": "escape/x.py",
        "not_py": "notes.txt",
    }[kind]
    before = _snapshot(example_project)
    result = stdio.call("write_filter_source", {"path": path, "content": "X = 1\n"})
    assert result.is_error
    message = stdio.text(result)
    assert "path" in message
    expected = {"dotdot": "'..'", "absolute": "absolute", "symlink": "outside", "not_py": ".py"}
    assert expected[kind] in message
    assert not (outside / "x.py").exists() and not (example_project.parent / "x.py").exists()
    assert _snapshot(example_project) == before


def test_write_filter_source_refuses_a_syntax_error(stdio: Any, example_project: Path) -> None:
    before = _snapshot(example_project)
    result = stdio.call("write_filter_source", {"path": "broken.py", "content": "def f(:\n"})
    assert result.is_error
    assert "syntax error" in stdio.text(result) and "line 1" in stdio.text(result)
    assert _snapshot(example_project) == before


def test_write_filter_source_backs_up_and_diffs(stdio: Any, example_project: Path) -> None:
    target = example_project / "filters" / "scalers.py"
    old = target.read_text()
    new = (
        old + '\n\nclass Doubler(Filter):\n    """Multiply by two."""\n\n'
        "    def forward(self, x, state):\n        return x * 2\n"
    )
    result = stdio.call("write_filter_source", {"path": "scalers.py", "content": new})
    assert not result.is_error, stdio.text(result)
    out = result.structured_content
    assert target.read_text() == new
    assert out["created"] is False and out["filters_import"] is True
    assert "Doubler" in out["filters_in_file"] and "StandardScale" in out["filters_in_file"]
    assert "+class Doubler(Filter):" in out["diff"]
    backup = example_project / out["backup"]
    assert backup.is_file() and backup.read_text() == old
    assert backup.is_relative_to(example_project / ".soma" / "backups")
    listed = stdio.call("list_filters", {"name_contains": "doubl"})
    assert [f["name"] for f in listed.structured_content["filters"]] == ["Doubler"]


def test_invalid_arguments_name_the_field_and_server_keeps_serving(
    stdio: Any,
) -> None:
    bad = stdio.call("run_study", {"spec": "LogReg()", "n_trials": "many"})
    assert bad.is_error and "n_trials" in stdio.text(bad)
    missing = stdio.call("run_pipeline", {"hypothesis": "no spec"})
    assert missing.is_error and "spec" in stdio.text(missing)
    typo = stdio.call("get_trajectory", {"research_lin": "x"})
    assert typo.is_error and "research_lin" in stdio.text(typo)
    unknown_filter = stdio.call("run_pipeline", {"spec": "Nope() >> LogReg()"})
    assert unknown_filter.is_error and "Nope" in stdio.text(unknown_filter)
    ok = stdio.call("list_filters", {})
    assert not ok.is_error and ok.structured_content["total"] >= 10


def test_failing_filter_names_node_and_records_failed_experiment(
    stdio: Any,
) -> None:
    source = (
        "from soma import Filter\n\n\nclass Exploder(Filter):\n"
        '    """Fails while fitting."""\n\n'
        "    def fit(self, x, y=None):\n        return helper(x)\n\n"
        "    def forward(self, x, state):\n        return x\n\n\n"
        "def helper(x):\n    raise ZeroDivisionError('kaboom in user code')\n"
    )
    wrote = stdio.call("write_filter_source", {"path": "exploder.py", "content": source})
    assert not wrote.is_error and wrote.structured_content["created"] is True
    result = stdio.call(
        "run_pipeline",
        {"spec": "StandardScale() >> Exploder() >> LogReg()", "hypothesis": "exploder test"},
    )
    assert result.is_error
    message = stdio.text(result)
    assert "'exploder'" in message and "ZeroDivisionError" in message
    assert "kaboom in user code" in message and "exploder.py" in message
    assert "in helper" in message  # the user's own frames, not only Soma's
    failed = stdio.call("query_knowledge_base", {"status": "failed", "k": 5})
    hits = failed.structured_content["hits"]
    assert any(
        h["hypothesis"] == "exploder test" and "ZeroDivisionError" in (h["error"] or "")
        for h in hits
    )


def test_user_code_printing_to_stdout_does_not_break_the_protocol(stdio: Any) -> None:
    # stdout is the wire: a stray print (or a C library writing to fd 1) must go elsewhere.
    source = (
        "import os\n\nfrom soma import Filter\n\nprint('printed at import')\n\n\n"
        "class Chatty(Filter):\n"
        '    """Prints while it works."""\n\n'
        "    def fit(self, x, y=None):\n"
        "        print('{not json at all')\n"
        "        os.write(1, b'raw bytes on fd 1\\n')\n"
        "        return None\n\n"
        "    def forward(self, x, state):\n"
        "        print('forward', len(x))\n"
        "        return x\n"
    )
    wrote = stdio.call("write_filter_source", {"path": "chatty.py", "content": source})
    assert not wrote.is_error and "Chatty" in wrote.structured_content["filters_in_file"]
    ran = stdio.call("run_pipeline", {"spec": "Chatty() >> StandardScale() >> LogReg()"})
    assert not ran.is_error, stdio.text(ran)
    assert ran.structured_content["value"] > 0.8
    assert not stdio.call("list_research_lines", {}).is_error


def test_resources_and_prompts(stdio: Any, example_project: Path) -> None:
    lines = stdio.call("list_research_lines", {})
    assert not lines.is_error, stdio.text(lines)
    names = [row["name"] for row in lines.structured_content["lines"]]
    assert "digits" in names  # the project's default line, created on first use
    line = json.loads(
        stdio.run(stdio.session.read_resource("soma://lines/digits")).contents[0].text
    )
    assert line["metric"] == "accuracy" and line["n_experiments"] >= 2

    prompts = stdio.run(stdio.session.list_prompts()).prompts
    assert "plan_next_experiment" in {p.name for p in prompts}
    got = stdio.run(
        stdio.session.get_prompt("plan_next_experiment", {"goal": "reach 0.99 accuracy"})
    )
    text: Any = got.messages[0].content.text
    assert "reach 0.99 accuracy" in text and "digits" in text and "{{" not in text
