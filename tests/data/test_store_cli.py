"""``soma store ls|put|get|info`` on a folder and on the moto S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from soma.cli import _register, app
from tests.data.conftest import KEY, SECRET, MotoServer

_register()
runner = CliRunner()


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_put_ls_info_get_on_a_folder(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6.0).reshape(3, 2))
    (tmp_path / "c.json").write_text('{"k": [1, 2]}')
    store = str(tmp_path / "st")
    assert _invoke("store", "put", "x", str(tmp_path / "a.npy"), "-s", store)[0] == 0
    assert _invoke("store", "put", "cfg", str(tmp_path / "c.json"), "-s", store)[0] == 0
    code, out = _invoke("store", "ls", "-s", store, "--json")
    assert code == 0
    assert [(m["key"], m["kind"], m["rows"]) for m in json.loads(out)] == [
        ("cfg", "json", None),
        ("x", "array", 3),
    ]
    code, out = _invoke("store", "info", "x", "-s", store, "--json")
    assert json.loads(out)["shape"] == [3, 2]
    code, out = _invoke("store", "get", "x", "-s", store, "-o", str(tmp_path / "back.npy"))
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), np.arange(6.0).reshape(3, 2))
    code, out = _invoke("store", "get", "cfg", "-s", store)
    assert json.loads(out) == {"k": [1, 2]}


def test_missing_key_and_missing_store_are_clear_errors(tmp_path: Path) -> None:
    code, out = _invoke("store", "get", "nope", "-s", str(tmp_path))
    assert code == 1 and "'nope'" in out and "no such object" in out
    code, out = _invoke("store", "ls", "-p", str(tmp_path))
    assert code == 1 and 'store = "URL"' in out


def test_project_store_from_soma_toml(tmp_path: Path) -> None:
    (tmp_path / "soma.toml").write_text('store = "datastore"\n')
    (tmp_path / "v.json").write_text("[1, 2, 3]")
    assert _invoke("store", "put", "v", str(tmp_path / "v.json"), "-p", str(tmp_path))[0] == 0
    assert (tmp_path / "datastore" / "v.meta.json").is_file()


def test_on_s3_with_credentials_from_the_environment(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    pytest.importorskip("s3fs")
    env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    url = f"s3://{bucket}/cli"
    (tmp_path / "b.bin").write_bytes(b"hello")
    code, out = _invoke(
        "store",
        "put",
        "b",
        str(tmp_path / "b.bin"),
        "-s",
        url,
        "--endpoint-url",
        moto.endpoint,
        env=env,
    )
    assert code == 0, out
    code, out = _invoke("store", "get", "b", "-s", url, "--endpoint-url", moto.endpoint, env=env)
    assert out == "hello" and SECRET not in out
