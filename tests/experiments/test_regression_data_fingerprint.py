"""Regression: run_pipeline, run_study, the agent, `soma project spec --run` and `soma run`
report the same data fingerprint for the same project data (a study used to hash its own
tuple of arrays, so the knowledge base could not group experiments by data across tools)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soma.project import init_project, load_project

SPEC = "StandardScale() >> LogReg(C=1.0)"
# A pipeline file for `soma run` whose data() is the project's own loader.
PIPELINE = """
from pathlib import Path

from soma.project import load_project

# The project's filters through discovery, not `import filters...`: a top-level `filters`
# package in sys.modules is what two projects' filter folders must never share.
project = load_project(Path(__file__).parent)
found = project.discover_filters()
pipeline = found["StandardScale"].cls() >> found["LogReg"].cls(C=1.0)


def data():
    return project.load_data()


def metric(y_true, y_pred):
    return float((y_true == y_pred).mean())
"""


@pytest.mark.slow  # the agent's run and its final report (~10 s on 2 cores)
def test_regression_every_tool_records_the_same_data_fingerprint(tmp_path: Path) -> None:
    import soma_tools as T
    from soma.cli import _register, app
    from soma_agent import run_agent

    root = init_project(tmp_path / "wine", example="wine")
    expected = load_project(root).load_data().fingerprint
    ctx = T.ToolContext(root, embedder="hashing")
    try:
        run = T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC))
        T.run_study(ctx, T.RunStudyInput(spec=SPEC, n_trials=1, sampler="random", seed=0))
        agent = run_agent(ctx, "maximize accuracy", max_experiments=1, planner="builtin", tools=ctx)
        recorded = {e.origin: e.data_fingerprint for e in ctx.kb.experiments()}
        assert ctx.kb.get(run.experiment_id).data_fingerprint == expected
        assert len(ctx.kb.experiments(run_id=agent.run_id)) == 1
    finally:
        ctx.close()
    assert set(recorded) == {"mcp", "study", "agent"}, recorded
    assert set(recorded.values()) == {expected}
    _register()
    runner = CliRunner()
    spec_run = runner.invoke(
        app, ["project", "spec", SPEC, "--run", "--no-cache", "--json", "--project", str(root)]
    )
    assert spec_run.exit_code == 0, spec_run.output
    assert json.loads(spec_run.output)["data_fingerprint"] == expected
    (root / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    file_run = runner.invoke(
        app, ["run", str(root / "pipeline.py"), "--no-cache", "--json", "--project", str(root)]
    )
    assert file_run.exit_code == 0, file_run.output
    summary = json.loads(file_run.stdout)
    assert summary["data_fingerprint"] == expected and 0.8 < summary["score"] <= 1.0
