"""Projects whose data lives in a store: ``data = "zarr://...#prefix"``, loaders of refs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from soma.data import LocalStore
from soma.errors import ProjectError
from soma.project import load_project

pytest.importorskip("zarr")


def _write(root: Path, toml: str, data_py: str | None = None) -> Path:
    (root / "filters").mkdir(parents=True, exist_ok=True)
    (root / "soma.toml").write_text(textwrap.dedent(toml))
    if data_py is not None:
        (root / "data.py").write_text(textwrap.dedent(data_py))
    return root


def _fill(store) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("train", 40), ("valid", 10)):
        store.put(rng.normal(size=(n, 3)), f"v1/{name}/x")
        store.put(rng.integers(0, 2, n), f"v1/{name}/y")


def test_data_url_in_soma_toml_loads_splits_from_zarr(tmp_path: Path) -> None:
    from soma.data.zarr import ZarrStore

    store = ZarrStore(str(tmp_path / "z"))
    _fill(store)
    root = _write(
        tmp_path / "p", f'data = "zarr://{tmp_path / "z"}#v1"\n[metric]\nname = "accuracy"\n'
    )
    splits = load_project(root).load_data()
    assert splits.train[0].shape == (40, 3) and splits.valid[1].shape == (10,)
    assert splits.test is None
    np.testing.assert_array_equal(splits.train[0], store.get("v1/train/x"))
    # fingerprinted by the content hashes taken at put: stable, and changes with the data
    again = load_project(root).load_data()
    assert splits.fingerprint == again.fingerprint and len(splits.fingerprint) == 64
    store.put(np.zeros((40, 3)), "v1/train/x")
    assert load_project(root).load_data().fingerprint != splits.fingerprint


def test_loader_returning_refs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "st")
    _fill(store)
    root = _write(
        tmp_path / "p",
        '[metric]\nname = "accuracy"\n',
        f"""
        from soma.data import open_store

        def load():
            store = open_store({str(tmp_path / "st")!r})
            return {{
                "train": (store.ref("v1/train/x"), store.ref("v1/train/y")),
                "valid": (store.ref("v1/valid/x"), store.ref("v1/valid/y")),
            }}
        """,
    )
    splits = load_project(root).load_data()
    assert isinstance(splits.train[0], np.ndarray) and splits.train[0].shape == (40, 3)


def test_missing_split_names_the_keys(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "st")
    store.put(np.zeros((4, 2)), "v1/train/x")
    root = _write(
        tmp_path / "p", f'data = "{(tmp_path / "st").as_uri()}#v1"\n[metric]\nname = "accuracy"\n'
    )
    with pytest.raises(ProjectError, match=r"'v1/train/y'"):
        load_project(root).load_data()
