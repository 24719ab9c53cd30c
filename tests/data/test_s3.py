"""S3Store against a real moto server: round trips, ranged reads, errors, secrecy."""

from __future__ import annotations

import numpy as np
import pytest

from soma.data import (
    StoreAuthError,
    StoreCorruptError,
    StoreKeyError,
    StoreUnreachableError,
)
from tests.data.conftest import KEY, SECRET, MotoServer, make_bucket

s3 = pytest.importorskip("soma.data.s3")

VALUES = [
    np.arange(24, dtype=np.float32).reshape(6, 4),
    np.array([[1, 2], [3, 4]], dtype=np.int64),
    {"name": "run", "scores": [0.5, 0.25], "ok": True, "none": None},
    [1, 2, 3],
    "text é",
    b"\x00\x01raw bytes",
    (1, "tuple", 2.5),
    {1: "int keys"},
    {"nested": {"set": {1, 2}}},
]


def _store(moto: MotoServer, bucket: str, prefix: str = "pre/fix") -> s3.S3Store:
    return s3.S3Store(bucket, prefix, key=KEY, secret=SECRET, endpoint_url=moto.endpoint)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_put_get_round_trip_of_every_value_kind(moto: MotoServer, bucket: str, value) -> None:
    store = _store(moto, bucket)
    ref = store.put(value, "v")
    back = store.get("v")
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(back, value)
        assert back.dtype == value.dtype
    else:
        assert back == value
    assert ref.resolve() == back if not isinstance(value, np.ndarray) else True
    assert store.exists("v") and store.keys() == ["v"]
    store.remove("v")
    assert not store.exists("v")


def test_content_addressed_put_and_meta(moto: MotoServer, bucket: str) -> None:
    store = _store(moto, bucket)
    a = store.put(np.ones((10, 3)))
    b = store.put(np.ones((10, 3)))
    assert a.key == b.key == a.content_hash
    meta = store.meta(a.key)
    assert (meta.rows, meta.shape, meta.dtype, meta.kind) == (10, (10, 3), "<f8", "array")


def test_get_rows_reads_a_byte_range_only(moto: MotoServer, bucket: str) -> None:
    store = _store(moto, bucket)
    big = np.arange(4_000_000, dtype=np.float64).reshape(-1, 4)  # 32 MB
    store.put(big, "big")
    before = len(moto.requests())
    rows = store.get_rows("big", 500_000, 10)
    np.testing.assert_array_equal(rows, big[500_000:500_010])
    fetched = moto.requests()[before:]
    data_gets = [r for r in fetched if r.startswith("GET ") and "big.data" in r]
    assert len(data_gets) == 1  # one ranged GET of the data object
    # and far fewer bytes than the object: the store reads at most two 1 MiB blocks
    assert store.reads == 2  # metadata + one range


def test_append_grows_an_array(moto: MotoServer, bucket: str) -> None:
    store = _store(moto, bucket)
    store.append("grow", np.zeros((2, 3)))
    meta = store.append("grow", np.ones((3, 3)))
    assert meta.rows == 5
    np.testing.assert_array_equal(store.get("grow")[2:], np.ones((3, 3)))


def test_missing_object_names_store_and_key(moto: MotoServer, bucket: str) -> None:
    store = _store(moto, bucket)
    with pytest.raises(StoreKeyError) as info:
        store.get("nope")
    assert "nope" in str(info.value) and f"s3://{bucket}/pre/fix" in str(info.value)
    assert info.value.key == "nope"


def test_wrong_credentials_give_one_clear_error_without_the_secret(
    moto_auth: MotoServer,
) -> None:
    make_bucket(moto_auth, "auth-bucket")  # the one request the server lets through
    bad = s3.S3Store(
        "auth-bucket",
        "pre",
        key="wrong-key",
        secret="wrong-secret-xyz",
        endpoint_url=moto_auth.endpoint,
    )
    with pytest.raises(StoreAuthError) as info:
        bad.get("x")
    text = str(info.value) + repr(info.value)
    assert "'x'" in text and "s3://auth-bucket/pre" in text
    assert "wrong-secret-xyz" not in text and "wrong-secret-xyz" not in repr(bad)


def test_unreachable_endpoint_is_one_clear_error() -> None:
    store = s3.S3Store(
        "some-bucket", key=KEY, secret=SECRET, endpoint_url="http://127.0.0.1:9", timeout_s=1.0
    )
    with pytest.raises(StoreUnreachableError) as info:
        store.get("k")
    assert "'k'" in str(info.value) and "127.0.0.1:9" in str(info.value)
    assert SECRET not in str(info.value)


def test_corrupt_block_is_detected(moto: MotoServer, bucket: str) -> None:
    store = _store(moto, bucket)
    store.put(np.arange(600_000, dtype=np.float64).reshape(-1, 2), "c")
    raw = bytearray(store.fs.cat_file(f"{bucket}/pre/fix/c.data"))
    raw[2_000_000] ^= 0xFF
    store.fs.pipe_file(f"{bucket}/pre/fix/c.data", bytes(raw))
    with pytest.raises(StoreCorruptError, match="'c'"):
        store.get("c")
    with pytest.raises(StoreCorruptError, match="block 1"):
        store.get_rows("c", 130_000, 5)  # rows in the damaged block
    np.testing.assert_array_equal(store.get_rows("c", 0, 2), [[0, 1], [2, 3]])  # block 0 fine


def test_repr_never_shows_credentials(moto: MotoServer, bucket: str) -> None:
    store = _store(moto, bucket)
    assert SECRET not in repr(store) and KEY not in repr(store)
    assert SECRET not in repr(store.put([1, 2]))


def test_the_content_hash_is_the_uploads_checksum(moto: MotoServer, bucket: str) -> None:
    # The SHA-256 taken at put goes up as x-amz-checksum-sha256 (S3 refuses a body that
    # does not match it), and the body is not hashed again for the signature.
    import base64

    store = _store(moto, bucket)
    store.put([1], "warm")  # s3fs makes its client on first use
    sent: list[dict[str, str]] = []
    store.fs.s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers))
    )
    big = np.arange(1_000_000, dtype=np.float64)  # 8 MB: hashed on two threads
    ref = store.put(big, "big")
    data_put = next(h for h in sent if int(h["Content-Length"]) > 1_000_000)
    assert base64.b64decode(data_put["x-amz-checksum-sha256"]).hex() == ref.content_hash
    assert data_put["X-Amz-Content-SHA256"] in ("UNSIGNED-PAYLOAD", b"UNSIGNED-PAYLOAD")
    np.testing.assert_array_equal(store.get("big"), big)
    assert ref.resolve().flags.writeable
