"""The tool layer called in-process (as the agent does) and through the SDK's in-memory Client."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import soma_tools as T
from soma_mcp._prompts import load_prompt_templates, parse_template
from soma_tools._safe_write import check_filter_path

SPEC = "StandardScale() >> PCA(n_components=16) >> LogReg(C=1.0)"


@pytest.fixture(scope="module")
def ctx(example_project: Path) -> Iterator[T.ToolContext]:
    context = T.ToolContext(example_project, embedder="hashing")
    yield context
    context.close()


def call(server: Any, name: str, arguments: dict[str, Any]) -> Any:
    from mcp import Client

    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(name, arguments)

    return asyncio.run(go())


def test_registry_has_the_13_tools_with_models() -> None:
    assert len(T.TOOLS) == 13
    for name, spec in T.TOOLS.items():
        assert spec.name == name and spec.fn.__name__ == name
        assert issubclass(spec.input_model, T.ToolInput)
        assert issubclass(spec.output_model, T.ToolOutput)
        json.dumps(spec.input_schema()), json.dumps(spec.output_schema())
    assert T.TOOLS["run_study"].progress and T.TOOLS["run_pipeline"].progress
    assert not T.TOOLS["list_filters"].progress


def test_invoke_validates_like_the_server(ctx: T.ToolContext) -> None:
    with pytest.raises(T.ToolError, match="k: Input should be less than or equal to 50"):
        T.TOOLS["query_knowledge_base"].invoke(ctx, {"k": 500})
    with pytest.raises(T.ToolError, match="name_contain: unknown argument"):
        T.TOOLS["list_filters"].invoke(ctx, {"name_contain": "x"})
    with pytest.raises(T.ToolError, match="exactly one of 'name' or 'file'"):
        T.TOOLS["read_filter_source"].invoke(ctx, {"name": "PCA", "file": "models.py"})


def test_json_text_arguments_are_decoded(ctx: T.ToolContext) -> None:
    out = T.TOOLS["run_pipeline"].invoke(
        ctx,
        {
            "spec": '{"chain": ["StandardScale", {"filter": "LogReg", "params": {"C": 0.5}}]}',
            "params": '{"log_reg.C": 2.0}',
            "tags": '["json", "decoded"]',
        },
    )
    assert isinstance(out, T.RunPipelineOutput)
    record = ctx.kb.get(out.experiment_id)
    assert record.params["log_reg.C"] == 2.0 and record.tags == ["json", "decoded"]


def test_run_pipeline_in_process_idempotency_and_seed(ctx: T.ToolContext) -> None:
    first = T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, idempotency_key="same-key"))
    again = T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, idempotency_key="same-key"))
    assert again.replayed and again.experiment_id == first.experiment_id
    assert again.value == first.value
    assert ctx.kb.count() == len({e.id for e in ctx.kb.experiments()})

    seeded = T.run_pipeline(
        ctx, T.RunPipelineInput(spec="RandomForest(n_estimators=10)", seed=7, origin="agent")
    )
    record = ctx.kb.get(seeded.experiment_id)
    assert record.params["random_forest.seed"] == 7 and record.seed == 7
    assert record.origin == "agent" and record.data_fingerprint


def test_run_pipeline_bad_params_and_unknown_line_name_the_field(ctx: T.ToolContext) -> None:
    before = ctx.kb.count()
    with pytest.raises(T.ToolError) as err:
        T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, params={"pca.n_compnents": 3}))
    assert err.value.field == "params" and "n_compnents" in str(err.value)
    with pytest.raises(T.ToolError) as err:
        T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, research_line="no-such-line"))
    assert err.value.field == "research_line" and "create_research_line" in str(err.value)
    assert ctx.kb.count() == before  # refused input records nothing


def test_research_lines_record_and_conclude(ctx: T.ToolContext) -> None:
    line = T.create_research_line(
        ctx, T.CreateResearchLineInput(name="scalers", description="Which scaler helps?")
    )
    assert line.line.metric == "accuracy" and line.line.direction == "maximize"
    with pytest.raises(T.ToolError) as err:
        T.create_research_line(ctx, T.CreateResearchLineInput(name="scalers"))
    assert err.value.field == "name"
    with pytest.raises(T.ToolError) as err:
        T.create_research_line(ctx, T.CreateResearchLineInput(name="x", metric="rmse"))
    assert err.value.field == "metric"
    with pytest.raises(T.ToolError) as err:
        T.create_research_line(ctx, T.CreateResearchLineInput(name="y", direction="minimize"))
    assert err.value.field == "direction"

    for spec in ("MinMaxScale() >> LogReg()", "RobustScale() >> LogReg()", SPEC):
        T.run_pipeline(ctx, T.RunPipelineInput(spec=spec, research_line="scalers"))
    lines = {row.name: row for row in T.list_research_lines(ctx, T.ListResearchLinesInput()).lines}
    assert lines["scalers"].n_experiments == 3 and lines["scalers"].best_value is not None

    with pytest.raises(T.ToolError) as err:
        T.record_experiment(
            ctx, T.RecordExperimentInput(research_line="scalers", metrics={"f1_macro": 0.5})
        )
    assert err.value.field == "metrics"
    made = T.record_experiment(
        ctx,
        T.RecordExperimentInput(
            research_line="scalers",
            name="paper baseline",
            hypothesis="the published number",
            metrics={"accuracy": 0.5},
        ),
    )
    assert made.created and made.status == "ok" and made.value == 0.5
    done = T.record_experiment(
        ctx, T.RecordExperimentInput(id=made.experiment_id, verdict="refuted", notes="too low")
    )
    assert not done.created and done.verdict == "refuted"
    assert ctx.kb.get(made.experiment_id).notes == "too low"
    with pytest.raises(T.ToolError, match="remove \\['name'\\]"):
        T.TOOLS["record_experiment"].invoke(ctx, {"id": made.experiment_id, "name": "renamed"})


def test_trajectory_is_bounded_with_a_resource(ctx: T.ToolContext) -> None:
    line = "pca-sweep"
    T.create_research_line(ctx, T.CreateResearchLineInput(name=line))
    for n in (2, 4, 8, 16, 32):
        T.run_pipeline(
            ctx,
            T.RunPipelineInput(
                spec=f"StandardScale() >> PCA(n_components={n}) >> LogReg()", research_line=line
            ),
        )
    out = T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line, limit=2))
    assert out.total_points == 5 and len(out.points) == 2
    assert out.points[-1].index == 4 and out.resource_uri == f"soma://lines/{line}/trajectory"
    assert "3 more row(s)" in out.render()
    values = [p.value for p in ctx.kb.trajectory(line)]
    assert out.best_value == max(values)
    assert [p.best_so_far for p in out.improvements] == sorted(
        {p.best_so_far for p in out.improvements}
    )
    f1 = T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line, metric="f1_macro"))
    assert f1.metric == "f1_macro" and f1.total_points == 5 and f1.direction == "maximize"
    with pytest.raises(T.ToolError) as err:
        T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line, metric="rmse"))
    assert err.value.field == "metric"
    change = T.get_change_points(ctx, T.GetChangePointsInput(research_line=line))
    assert all(c.experiment_id for c in change.change_points)


def test_report_and_resources_through_the_in_memory_client(
    ctx: T.ToolContext, tmp_path: Path
) -> None:
    from mcp import Client, MCPError

    from soma_mcp.server import create_server

    server = create_server(ctx)
    report = call(server, "generate_report", {"research_line": "pca-sweep"})
    assert not report.is_error
    path = Path(report.structured_content["path"])
    assert path.is_file() and "pca-sweep" in report.structured_content["markdown"]

    async def read(uri: str) -> str:
        async with Client(server) as client:
            try:
                result = await client.read_resource(uri)
            except MCPError as exc:
                return f"error: {exc}"
            return result.contents[0].text

    assert asyncio.run(read("soma://reports/pca-sweep")) == path.read_text()
    trajectory = json.loads(asyncio.run(read("soma://lines/pca-sweep/trajectory")))
    assert len(trajectory) == 5
    filters = json.loads(asyncio.run(read("soma://filters")))
    assert {"PCA", "LogReg"} <= {f["name"] for f in filters["filters"]}
    missing = asyncio.run(read("soma://lines/nope"))
    assert missing.startswith("error:") and "unknown research line 'nope'" in missing
    failed = call(server, "get_trajectory", {"research_line": "nope"})
    assert failed.is_error and "research_line" in failed.content[0].text


def test_read_filter_source_by_name_and_file(ctx: T.ToolContext) -> None:
    by_name = T.read_filter_source(ctx, T.ReadFilterSourceInput(name="PCA"))
    lines = by_name.source.splitlines()
    assert lines[by_name.start_line - 1].startswith("class PCA(")
    by_file = T.read_filter_source(ctx, T.ReadFilterSourceInput(file=by_name.file))
    assert by_file.source == by_name.source and by_file.filter is None
    with pytest.raises(T.ToolError) as err:
        T.read_filter_source(ctx, T.ReadFilterSourceInput(name="PCAA"))
    assert err.value.field == "name" and "did you mean 'PCA'" in str(err.value)
    with pytest.raises(T.ToolError) as err:
        T.read_filter_source(ctx, T.ReadFilterSourceInput(file="../soma.toml"))
    assert err.value.field == "file"


def test_list_filters_is_bounded(ctx: T.ToolContext) -> None:
    body = "\n".join(
        f"class Gen{i:02d}(Filter):\n    def forward(self, x, state):\n        return x\n"
        for i in range(45)
    )
    T.write_filter_source(
        ctx,
        T.WriteFilterSourceInput(path="generated.py", content=f"from soma import Filter\n{body}"),
    )
    out = T.list_filters(ctx, T.ListFiltersInput())
    assert out.total >= 55 and len(out.filters) == 40 and out.resource_uri == "soma://filters"
    assert "more row(s) not shown; read soma://filters" in out.render()
    only = T.list_filters(ctx, T.ListFiltersInput(name_contains="gen4"))
    assert [f.name for f in only.filters] == [f"Gen4{i}" for i in range(5)]


def test_check_filter_path_rules(tmp_path: Path) -> None:
    filters = tmp_path / "filters"
    filters.mkdir()
    (filters / "real.py").write_text("X = 1\n")
    os.symlink(filters / "real.py", filters / "alias.py")
    assert check_filter_path(filters, "alias.py").path == (filters / "real.py").resolve()
    assert check_filter_path(filters, "sub/new.py").rel == "sub/new.py"
    for bad, why in [
        ("", "relative path"),
        ("a\\b.py", "backslash"),
        (".hidden.py", "hidden"),
        ("sub/../../x.py", "'..'"),
        ("/etc/x.py", "absolute"),
        ("x.pyc", "not a .py"),
    ]:
        with pytest.raises(T.ToolError, match=why) as err:
            check_filter_path(filters, bad)
        assert err.value.field == "path"


def test_prompt_templates_parse_and_render(ctx: T.ToolContext) -> None:
    from importlib.resources import files

    assert files("soma_prompts").joinpath("plan_next_experiment.md").is_file()
    templates = {t.name: t for t in load_prompt_templates()}
    assert {"plan_next_experiment", "analyze_research_line", "write_filter"} <= set(templates)
    plan = templates["plan_next_experiment"]
    assert [(a.name, a.required) for a in plan.arguments] == [
        ("goal", True),
        ("research_line", False),
    ]
    text = plan.render({"goal": "beat 0.97"}, {"project": "P", "lines": "L"})
    assert "beat 0.97" in text and "(not given)" in text and "{{" not in text
    with pytest.raises(ValueError, match="goal"):
        plan.render({}, {})
    assert parse_template("plain text, agent only", "x.md") is None
    with pytest.raises(ValueError, match="name"):
        parse_template("---\ndescription: d\n---\nbody", "x.md")


def test_mcp_config_prints_the_desktop_block(example_project: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "soma.cli", "mcp", "config", "--project", str(example_project)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    block = json.loads(done.stdout)["mcpServers"]["soma"]
    assert block["command"] == sys.executable and Path(block["command"]).is_absolute()
    assert block["args"] == ["-m", "soma.cli", "mcp", "--project", str(example_project.resolve())]
    bad = subprocess.run(
        [sys.executable, "-m", "soma.cli", "mcp", "config", "--project", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "does not exist" in bad.stderr


def test_line_stats_follow_every_kind_of_change(ctx: T.ToolContext) -> None:
    from soma.knowledge import Experiment, KnowledgeBase

    line = "cache-check"
    T.create_research_line(ctx, T.CreateResearchLineInput(name=line))
    made = T.record_experiment(
        ctx, T.RecordExperimentInput(research_line=line, metrics={"accuracy": 0.5})
    )
    first = T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line))
    assert first.total_points == 1 and first.best_value == 0.5
    # an in-place metric change through the tools
    T.record_experiment(
        ctx, T.RecordExperimentInput(id=made.experiment_id, metrics={"accuracy": 0.7})
    )
    assert T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line)).best_value == 0.7
    # another writer on the same file (as another process would be)
    other = KnowledgeBase(ctx.project.kb_path, embedder="hashing")
    try:
        running = other.record(Experiment(name="x", line=line, status="running"))
        assert T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line)).total_points == 1
        other.update(running, status="ok", metrics={"accuracy": 0.9})
    finally:
        other.close()
    now = T.get_trajectory(ctx, T.GetTrajectoryInput(research_line=line))
    assert now.total_points == 2 and now.best_value == 0.9
    lines = {r.name: r for r in T.list_research_lines(ctx, T.ListResearchLinesInput()).lines}
    assert lines[line].n_experiments == 2 and lines[line].best_experiment_id == running


def test_run_study_continues_a_named_study(ctx: T.ToolContext) -> None:
    seen: list[tuple[float, float | None, str | None]] = []
    inp = T.RunStudyInput(
        spec="StandardScale() >> LogReg()", n_trials=2, sampler="random", seed=3, name="again"
    )
    first = T.run_study(ctx, inp, progress=lambda *a: seen.append(a))
    assert first.n_trials == first.total_trials == 2 and [s[0] for s in seen] == [1, 2]
    second = T.run_study(ctx, inp.model_copy(update={"n_trials": 1}))
    assert second.n_trials == 1 and second.total_trials == 3
    assert sum(second.trials_by_status.values()) == 1
    assert second.best_value is not None and second.best_value >= first.best_value
    with pytest.raises(T.ToolError) as err:
        T.run_study(ctx, inp.model_copy(update={"space": {"log_reg.C": T.SpaceSpec(low=1)}}))
    assert err.value.field == "space.log_reg.C"


def test_change_points_find_a_level_shift(ctx: T.ToolContext) -> None:
    line = "shift"
    T.create_research_line(ctx, T.CreateResearchLineInput(name=line))
    for i in range(12):
        value = (0.60 if i < 6 else 0.90) + 0.002 * (i % 3)
        T.record_experiment(
            ctx,
            T.RecordExperimentInput(
                research_line=line,
                pipeline_spec="StandardScale() >> LogReg()" if i < 6 else "PCA() >> SVC()",
                metrics={"accuracy": value},
            ),
        )
    out = T.get_change_points(ctx, T.GetChangePointsInput(research_line=line))
    assert out.total >= 1 and out.resource_uri == "soma://lines/shift"
    shift = out.change_points[0]
    assert shift.index == 6 and shift.before_mean < 0.7 < shift.after_mean and shift.explanation
    assert "what changed" in out.render()


def test_line_names_with_spaces_round_trip_through_resource_uris(ctx: T.ToolContext) -> None:
    from mcp import Client, MCPError

    from soma_mcp.server import create_server

    made = T.create_research_line(ctx, T.CreateResearchLineInput(name="scaler study 2"))
    uri = made.line.resource_uri
    assert uri == "soma://lines/scaler%20study%202"

    async def read() -> Any:
        async with Client(create_server(ctx)) as client:
            try:
                return json.loads((await client.read_resource(uri)).contents[0].text)
            except MCPError as exc:
                return str(exc)

    assert asyncio.run(read())["name"] == "scaler study 2"
