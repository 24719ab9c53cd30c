"""A DataRef travels to another process (pickle or JSON) with its store's configuration,
never its credentials, and resolves there with the credentials of that process's
environment: against the moto S3 server and against a local folder."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from soma.data import DataRef, LocalStore
from tests.data.conftest import KEY, SECRET, MotoServer

s3 = pytest.importorskip("soma.data.s3")

_CHILD = r"""
import json, pickle, sys
import numpy as np
from soma.data import DataRef

refs = pickle.loads(open(sys.argv[1], "rb").read())
refs += [DataRef.model_validate_json(text) for text in json.loads(open(sys.argv[2]).read())]
out = []
for ref in refs:
    value = ref.resolve()
    store = ref.open_store()
    key = getattr(store, "options", {}).get("key")
    out.append({"sum": float(np.asarray(value).sum()), "rows": len(value), "key": key,
                "store": repr(store)})
print(json.dumps(out))
"""


def _resolve_elsewhere(tmp_path: Path, refs: list[DataRef], env: dict[str, str]) -> list[dict]:
    pickled, as_json = tmp_path / "refs.pkl", tmp_path / "refs.json"
    pickled.write_bytes(pickle.dumps(refs))
    as_json.write_text(json.dumps([ref.model_dump_json() for ref in refs]))
    for blob in (pickled.read_bytes(), as_json.read_bytes()):
        assert SECRET.encode() not in blob and KEY.encode() not in blob
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(pickled), str(as_json)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_refs_resolve_in_a_spawned_process(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    remote = s3.S3Store(bucket, "portable", key=KEY, secret=SECRET, endpoint_url=moto.endpoint)
    local = LocalStore(tmp_path / "local")
    x = np.arange(30.0).reshape(10, 3)
    s3_ref = remote.put(x, "x")
    local_ref = local.put(x * 2, "x")
    assert dict(s3_ref.store_options) == {"endpoint_url": moto.endpoint}
    assert SECRET not in repr(s3_ref) and SECRET not in s3_ref.model_dump_json()
    refs = [s3_ref, s3_ref[2:5], local_ref]
    # The credentials come from the child's environment; the endpoint from the reference
    # (no AWS_ENDPOINT_URL there).
    found = _resolve_elsewhere(
        tmp_path, refs, {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    )
    expected = [x.sum(), x[2:5].sum(), (x * 2).sum()] * 2  # pickled, then JSON
    assert [item["sum"] for item in found] == expected
    assert [item["rows"] for item in found] == [10, 3, 10] * 2
    assert found[0]["key"] == KEY and moto.endpoint in found[0]["store"]
    assert all(SECRET not in item["store"] for item in found)


def test_a_ref_is_hashable_and_round_trips_with_its_options(moto: MotoServer, bucket: str) -> None:
    remote = s3.S3Store(
        bucket, "p", key=KEY, secret=SECRET, endpoint_url=moto.endpoint, region="eu-west-1"
    )
    ref = remote.put([1, 2, 3], "list")
    assert dict(ref.store_options) == {"endpoint_url": moto.endpoint, "region": "eu-west-1"}
    assert DataRef.model_validate_json(ref.model_dump_json()) == ref
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert len({ref, ref[0:2], pickle.loads(pickle.dumps(ref))}) == 2
