"""What each tool promises, checked in-process on a fresh example project per test.

Schemas written for an LLM, list_filters' content, write_filter_source's versioned backups,
atomic writes and import report, the useful end of a traceback, failed data loaders,
bounded results with resource links, reports with plots, and the HTTP server's defaults.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import soma_tools as T

SPEC = "StandardScale() >> LogReg(C=1.0)"


@pytest.fixture
def ctx(tmp_path: Path, kit: Any) -> Iterator[T.ToolContext]:
    context = T.ToolContext(kit.make_project(tmp_path / "digits"), embedder="hashing")
    yield context
    context.close()


def read_resource(ctx: T.ToolContext, uri: str) -> str:
    """The text of a resource through the SDK's in-memory client, or 'error: ...'."""
    from mcp import Client, MCPError

    from soma_mcp.server import create_server

    async def go() -> str:
        async with Client(create_server(ctx)) as client:
            try:
                return (await client.read_resource(uri)).contents[0].text
            except MCPError as exc:
                return f"error: {exc}"

    return asyncio.run(go())


def backups(ctx: T.ToolContext) -> list[Path]:
    folder = ctx.root / ".soma" / "backups"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- schemas ----------------------------------------------------------------------------


def _undescribed(schema: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            text = prop.get("description", "") if isinstance(prop, dict) else ""
            if len(text) < 15:
                found.append(f"{path}{name}")
        for key, value in schema.items():
            found += _undescribed(value, f"{path}{key}.")
    elif isinstance(schema, list):
        for item in schema:
            found += _undescribed(item, path)
    return found


def test_every_argument_is_described_for_an_llm_reader() -> None:
    missing = {
        name: bad for name, spec in T.TOOLS.items() if (bad := _undescribed(spec.input_schema()))
    }
    assert missing == {}
    for spec in T.TOOLS.values():
        assert spec.input_schema().get("additionalProperties") is False  # typos are refused
        assert len(spec.description) > 80, f"{spec.name}: say what it does, and when to use it"


# -- list_filters / read_filter_source --------------------------------------------------


def test_list_filters_gives_files_search_spaces_and_first_doc_lines(ctx: T.ToolContext) -> None:
    out = T.list_filters(ctx, T.ListFiltersInput())
    assert out.total == len(out.filters) == 10 and out.errors == {} and out.resource_uri is None
    pca = next(f for f in out.filters if f.name == "PCA")
    assert pca.file == "filters/reducers.py"
    assert pca.doc.startswith("Project onto the leading principal components")
    params = {p.name: p for p in pca.params}
    assert params["n_components"].space == {
        "type": "int",
        "low": 2,
        "high": 64,
        "log": False,
        "step": 1,
        "default": 32,
    }
    assert params["n_components"].default == 32
    assert params["whiten"].space["choices"] == [False, True]
    log_reg = next(f for f in out.filters if f.name == "LogReg")
    fixed = {p.name: p for p in log_reg.params}["max_iter"]
    assert fixed.space is None and fixed.default == 500
    text = out.render()
    assert "C=1.0 (searchable)" in text and "Multinomial logistic regression" in text


def test_read_filter_source_cut_links_the_whole_file(ctx: T.ToolContext) -> None:
    from soma_tools._filter_tools import SOURCE_LIMIT

    body = "".join(f"# padding line {i:06d} {'x' * 60}\n" for i in range(SOURCE_LIMIT // 70 + 50))
    content = f"{body}from soma import Filter\n\n\nclass Late(Filter):\n"
    content += "    def forward(self, x, state):\n        return x\n"
    T.write_filter_source(ctx, T.WriteFilterSourceInput(path="long.py", content=content))
    out = T.read_filter_source(ctx, T.ReadFilterSourceInput(name="Late"))
    assert out.truncated and len(out.source) == SOURCE_LIMIT
    assert out.resource_uri == "soma://filters/long.py" and out.resource_uri in out.render()
    assert read_resource(ctx, out.resource_uri) == content
    whole = T.read_filter_source(ctx, T.ReadFilterSourceInput(file="scalers.py"))
    assert not whole.truncated and whole.resource_uri is None

    T.write_filter_source(ctx, T.WriteFilterSourceInput(path="sub/helper.py", content="X = 1\n"))
    assert read_resource(ctx, "soma://filters/sub%2Fhelper.py") == "X = 1\n"
    refused = read_resource(ctx, "soma://filters/..%2Fsoma.toml")
    assert refused.startswith("error:") and "[metric]" not in refused  # not the file's text
    assert read_resource(ctx, "soma://filters/nope.py").startswith("error:")


# -- write_filter_source ----------------------------------------------------------------


def test_write_filter_source_keeps_every_version(ctx: T.ToolContext) -> None:
    target = ctx.project.filters_dir / "scalers.py"
    original = target.read_text()
    first = original + "\nFIRST = 1\n"
    second = original + "\nSECOND = 2\n"
    one = T.write_filter_source(ctx, T.WriteFilterSourceInput(path="scalers.py", content=first))
    two = T.write_filter_source(ctx, T.WriteFilterSourceInput(path="scalers.py", content=second))
    assert one.backup and two.backup and one.backup != two.backup
    assert ".v0001." in one.backup and ".v0002." in two.backup
    assert (ctx.root / one.backup).read_text() == original  # nothing overwritten
    assert (ctx.root / two.backup).read_text() == first
    assert [p.relative_to(ctx.root).as_posix() for p in backups(ctx)] == [one.backup, two.backup]
    assert all(b.startswith(".soma/backups/") for b in (one.backup, two.backup))
    assert "-FIRST = 1" in two.diff and "+SECOND = 2" in two.diff
    assert target.read_text() == second
    created = T.write_filter_source(ctx, T.WriteFilterSourceInput(path="new.py", content="Y = 1\n"))
    assert created.created and created.backup is None and len(backups(ctx)) == 2


def test_write_filter_source_is_atomic(ctx: T.ToolContext, monkeypatch: Any) -> None:
    target = ctx.project.filters_dir / "scalers.py"
    before = target.read_text()

    def crash(*args: Any) -> None:
        raise OSError("disk full at the worst moment")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        T.write_filter_source(ctx, T.WriteFilterSourceInput(path="scalers.py", content="X = 1\n"))
    monkeypatch.undo()
    assert target.read_text() == before  # the old file, whole: never half of the new one
    assert sorted(p.name for p in ctx.project.filters_dir.iterdir()) == [
        "models.py",
        "reducers.py",
        "scalers.py",
    ]  # and no temporary file left behind
    assert T.list_filters(ctx, T.ListFiltersInput()).total == 10


def test_write_filter_source_says_when_filters_no_longer_import(ctx: T.ToolContext) -> None:
    broken = T.write_filter_source(
        ctx, T.WriteFilterSourceInput(path="extra.py", content="import not_a_module_zz\n")
    )
    assert broken.filters_import is False and broken.n_filters == 10
    assert broken.errors == {
        "filters/extra.py": "filters/extra.py:1: ModuleNotFoundError: "
        "No module named 'not_a_module_zz'"
    }
    assert "SOME FILES FAIL TO IMPORT" in broken.render()
    raising = "from soma import Filter\n\nraise RuntimeError('half-edited')\n"
    replaced = T.write_filter_source(
        ctx, T.WriteFilterSourceInput(path="scalers.py", content=raising)
    )
    assert replaced.filters_import is False and replaced.backup is not None
    assert "RuntimeError: half-edited" in replaced.errors["filters/scalers.py"]
    assert replaced.n_filters == 7  # the three scalers are gone, the others still listed
    fixed = T.write_filter_source(ctx, T.WriteFilterSourceInput(path="extra.py", content="Z = 1\n"))
    assert fixed.errors.keys() == {"filters/scalers.py"}


@pytest.mark.parametrize("dangling", [False, True])
def test_write_filter_source_refuses_a_file_link_leading_out(
    ctx: T.ToolContext, tmp_path: Path, dangling: bool
) -> None:
    outside = tmp_path / "outside.py"
    if not dangling:
        outside.write_text("KEEP = 1\n")
    os.symlink(outside, ctx.project.filters_dir / "evil.py")
    with pytest.raises(T.ToolError) as err:
        T.write_filter_source(ctx, T.WriteFilterSourceInput(path="evil.py", content="X = 2\n"))
    assert err.value.field == "path" and "outside the filters folder" in str(err.value)
    assert (outside.read_text() == "KEEP = 1\n") if not dangling else not outside.exists()
    assert backups(ctx) == []


# -- run_pipeline failures ----------------------------------------------------------------

DEEP_LIBRARY = """
def level(n, where):
    if n == 0:
        raise ValueError(f"deep library failure while {where}")
    return level(n - 1, where)
"""

CALLS_LIBRARY = '''
from soma import Filter

import soma_test_deep_library


class CallsLibrary(Filter):
    """Fits through a library that fails twelve calls deep."""

    def fit(self, x, y=None):
        return soma_test_deep_library.level(12, "fitting")

    def forward(self, x, state):
        return x
'''


def test_regression_traceback_keeps_user_frames_under_a_deep_library_stack(
    ctx: T.ToolContext, tmp_path: Path, monkeypatch: Any
) -> None:
    # Only the last 8 frames used to be kept: a library failing deep inside pushed the
    # user's own frame (the line they can fix) out of the message.
    library = tmp_path / "library"
    library.mkdir()
    (library / "soma_test_deep_library.py").write_text(DEEP_LIBRARY)
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.delitem(sys.modules, "soma_test_deep_library", raising=False)
    T.write_filter_source(ctx, T.WriteFilterSourceInput(path="calls.py", content=CALLS_LIBRARY))
    with pytest.raises(T.PipelineFailedError) as err:
        T.run_pipeline(ctx, T.RunPipelineInput(spec="StandardScale() >> CallsLibrary()"))
    tail = err.value.traceback_tail
    assert "filters/calls.py" in tail and "soma_test_deep_library.level(12" in tail
    assert "ValueError: deep library failure while fitting" in tail
    assert "frame(s) left out" in tail
    assert tail.count("\n  File ") <= 8  # still the useful end, not all fourteen frames
    assert err.value.node == "calls_library"
    record = ctx.kb.get(err.value.experiment_id)
    assert record.status == "failed" and "filters/calls.py" in record.error


def test_a_failing_data_loader_is_a_recorded_failure(ctx: T.ToolContext) -> None:
    ctx.project.data_path.write_text("def load():\n    raise ConnectionError('data server down')\n")
    with pytest.raises(T.PipelineFailedError) as err:
        T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, hypothesis="needs data"))
    assert err.value.node == "data"
    message = str(err.value)
    assert "ConnectionError" in message and "data server down" in message
    assert "data.py" in err.value.traceback_tail
    assert f"Recorded as failed experiment {err.value.experiment_id}" in message
    record = ctx.kb.get(err.value.experiment_id)
    assert record.status == "failed" and record.hypothesis == "needs data"
    assert "data server down" in record.error


# -- record_experiment ----------------------------------------------------------------------


def test_regression_an_idempotent_repeat_is_not_reported_as_created(ctx: T.ToolContext) -> None:
    # Re-sending an idempotency key returned the first record but said created=True.
    inp = T.RecordExperimentInput(metrics={"accuracy": 0.5}, idempotency_key="k-1")
    first = T.record_experiment(ctx, inp)
    again = T.record_experiment(ctx, inp)
    assert first.created and not again.created
    assert again.experiment_id == first.experiment_id and ctx.kb.count() == 1


# -- bounded results, lines and reports ------------------------------------------------------


def test_list_research_lines_is_bounded_with_a_resource(ctx: T.ToolContext) -> None:
    for i in range(32):
        T.create_research_line(ctx, T.CreateResearchLineInput(name=f"line {i:02d}"))
    out = T.list_research_lines(ctx, T.ListResearchLinesInput())
    assert out.total == 32 and len(out.lines) == 30 and out.resource_uri == "soma://lines"
    assert "2 more row(s) not shown; read soma://lines" in out.render()
    every = json.loads(read_resource(ctx, "soma://lines"))
    assert len(every) == 32


def test_lines_trends_promising_lines_and_reports(ctx: T.ToolContext) -> None:
    T.create_research_line(ctx, T.CreateResearchLineInput(name="rising"))
    T.create_research_line(ctx, T.CreateResearchLineInput(name="flat"))
    for i in range(8):
        for line, value in (("rising", 0.5 + 0.05 * i), ("flat", 0.7)):
            T.record_experiment(
                ctx,
                T.RecordExperimentInput(
                    research_line=line,
                    pipeline_spec=f"StandardScale() >> LogReg(C={i + 1})",
                    metrics={"accuracy": value},
                ),
            )
    rows = {r.name: r for r in T.list_research_lines(ctx, T.ListResearchLinesInput()).lines}
    assert rows["rising"].trend == "improving" and rows["flat"].trend == "plateaued"
    assert rows["rising"].best_value == pytest.approx(0.85)

    promising = T.promising_lines(ctx, T.PromisingLinesInput(k=2)).lines
    # Improving lines are worth another experiment; a flat line below the best is not.
    assert [r.name for r in promising] == ["rising"]
    assert promising[0].trend == "improving" and promising[0].reasons

    report = T.generate_report(ctx, T.GenerateReportInput(research_line="rising"))
    path = Path(report.path)
    assert path.is_file() and path.suffix == ".md" and path.read_text().startswith("# ")
    assert path.is_relative_to(ctx.root / ".soma" / "reports")
    assert report.plot_path is not None
    assert Path(report.plot_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.resource_uri == "soma://reports/rising"
    assert read_resource(ctx, report.resource_uri) == path.read_text()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("return 1\n", "'return' outside function"),
        ("def f(a, a):\n    pass\n", "duplicate argument 'a'"),
        ("for x in []:\n    pass\nbreak\n", "'break' outside loop"),
        ("x = " + "(" * 300 + ")" * 300 + "\n", ""),
    ],
)
def test_regression_errors_the_compiler_finds_are_refused_before_writing(
    ctx: T.ToolContext, content: str, why: str
) -> None:
    # ast.parse accepts these; they failed only later, when the written file was imported.
    with pytest.raises(T.ToolError) as err:
        T.write_filter_source(ctx, T.WriteFilterSourceInput(path="scalers.py", content=content))
    assert err.value.field == "content" and why in str(err.value)
    assert "Nothing was written." in str(err.value)
    assert backups(ctx) == []
    assert "StandardScale" in (ctx.project.filters_dir / "scalers.py").read_text()
