"""The MCP tools work unchanged on a project whose data lives in a Zarr store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("zarr")


def _tools():
    import soma_tools

    return soma_tools


def test_run_pipeline_on_a_project_with_data_in_zarr(tmp_path: Path) -> None:
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

    T = _tools()
    ctx = T.ToolContext(root, embedder="hashing")
    try:
        result = T.run_pipeline(ctx, T.RunPipelineInput(spec="StandardScale() >> LogReg(C=1.0)"))
        assert 0.8 < result.value <= 1.0
        record = ctx.kb.get(result.experiment_id)
        assert record.data_fingerprint == load_project(root).load_data().fingerprint
    finally:
        ctx.close()
