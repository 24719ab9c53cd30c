"""Regression: run_pipeline, run_study and `soma project spec --run` record the same data
fingerprint for the same project data (a study used to hash its own tuple of arrays)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from soma.project import init_project, load_project


def test_regression_every_tool_records_the_same_data_fingerprint(tmp_path: Path) -> None:
    import soma_tools as T
    from soma.cli import _register, app

    root = init_project(tmp_path / "wine", example="wine")
    expected = load_project(root).load_data().fingerprint
    ctx = T.ToolContext(root, embedder="hashing")
    try:
        spec = "StandardScale() >> LogReg(C=1.0)"
        run = T.run_pipeline(ctx, T.RunPipelineInput(spec=spec))
        T.run_study(ctx, T.RunStudyInput(spec=spec, n_trials=1, sampler="random", seed=0))
        recorded = {e.origin: e.data_fingerprint for e in ctx.kb.experiments()}
        assert ctx.kb.get(run.experiment_id).data_fingerprint == expected
    finally:
        ctx.close()
    assert set(recorded) >= {"study"} and len(recorded) >= 2
    assert set(recorded.values()) == {expected}
    _register()
    result = CliRunner().invoke(
        app, ["project", "spec", spec, "--run", "--no-cache", "--json", "--project", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data_fingerprint"] == expected
