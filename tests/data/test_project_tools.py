"""The MCP tools and the agent work unchanged on a project whose data lives in a Zarr
store: run_pipeline, run_study and a 2-experiment `soma agent run` with the offline
planner, each recording the store's data fingerprint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("zarr")


def _tools():
    import soma_tools

    return soma_tools


@pytest.fixture
def store_project(tmp_path: Path) -> Path:
    """The digits example with its splits moved into a Zarr store and data.py removed."""
    from soma.data.zarr import ZarrStore
    from soma.project import init_project, load_project

    root = Path(init_project(tmp_path / "digits", example="digits"))
    splits = load_project(root).load_data()
    store = ZarrStore(str(tmp_path / "z"))
    for name in ("train", "valid", "test"):
        split = getattr(splits, name)
        if split is not None:
            store.put(split[0], f"digits/{name}/x")
            store.put(split[1], f"digits/{name}/y")
    config = root / "soma.toml"
    text, count = re.subn(
        r'(?m)^data = "[^"]*"', f'data = "zarr://{tmp_path / "z"}#digits"', config.read_text()
    )
    if count == 0:
        text = f'data = "zarr://{tmp_path / "z"}#digits"\n' + text
    config.write_text(text)
    (root / "data.py").unlink()  # nothing left to load but the store
    return root


def test_run_pipeline_on_a_project_with_data_in_zarr(store_project: Path) -> None:
    from soma.project import load_project

    T = _tools()
    ctx = T.ToolContext(store_project, embedder="hashing")
    try:
        result = T.run_pipeline(ctx, T.RunPipelineInput(spec="StandardScale() >> LogReg(C=1.0)"))
        assert 0.8 < result.value <= 1.0
        record = ctx.kb.get(result.experiment_id)
        assert record.data_fingerprint == load_project(store_project).load_data().fingerprint
    finally:
        ctx.close()


def test_run_study_on_a_project_with_data_in_zarr(store_project: Path) -> None:
    from soma.project import load_project

    T = _tools()
    ctx = T.ToolContext(store_project, embedder="hashing")
    try:
        result = T.run_study(
            ctx,
            T.RunStudyInput(
                spec="StandardScale() >> LogReg()",
                space={"log_reg.C": {"low": 0.01, "high": 10.0, "log": True}},
                n_trials=2,
                sampler="random",
            ),
        )
        assert result.n_trials == 2 and result.best_value is not None
        assert 0.8 < result.best_value <= 1.0
        fingerprint = load_project(store_project).load_data().fingerprint
        record = ctx.kb.get(result.best_experiment_id)
        assert record.data_fingerprint == fingerprint
    finally:
        ctx.close()


@pytest.mark.slow  # a whole agent run (~10 s on 2 cores)
def test_agent_runs_on_a_project_with_data_in_zarr(store_project: Path) -> None:
    from soma.knowledge import KnowledgeBase
    from soma.project import load_project
    from tests.cli.cli_helpers import soma

    code, out = soma(
        "agent", "run", "maximize validation accuracy", "--project", str(store_project),
        "--max-experiments", "2", "--planner", "builtin", "--seed", "1",
        "--embedder", "hashing",
    )  # fmt: skip
    assert code == 0, out
    kb = KnowledgeBase(store_project / ".soma" / "kb.sqlite", embedder="hashing")
    try:
        records = kb.experiments()
        done = [r for r in records if r.metrics]
        assert len(done) == 2, out
        fingerprint = load_project(store_project).load_data().fingerprint
        assert {r.data_fingerprint for r in done} == {fingerprint}
        assert all(0.5 < next(iter(r.metrics.values())) <= 1.0 for r in done)
    finally:
        kb.close()
