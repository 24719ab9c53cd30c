"""ZarrStore on disk and on a real moto S3 server: partial reads, append, corruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soma.data import StoreCorruptError, StoreKeyError
from soma.errors import ValidationError
from tests.data.conftest import KEY, SECRET, MotoServer

zarr_mod = pytest.importorskip("soma.data.zarr")
ZarrStore = zarr_mod.ZarrStore


def test_round_trip_and_meta(tmp_path: Path) -> None:
    store = ZarrStore(str(tmp_path / "z"))
    data = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
    ref = store.put(data, "train/x")
    np.testing.assert_array_equal(store.get("train/x"), data)
    meta = store.meta("train/x")
    assert (meta.rows, meta.shape, meta.dtype, meta.kind) == (1000, (1000, 8), "<f4", "array")
    assert meta.content_hash == ref.content_hash and len(ref.content_hash) == 64
    assert store.keys() == ["train/x"] and store.keys("val") == []
    np.testing.assert_array_equal(store.get_rows("train/x", 990, 50), data[990:])


def test_non_array_values_are_refused_with_the_store_to_use(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LocalStore or S3Store"):
        ZarrStore(str(tmp_path)).put({"a": 1}, "k")


def test_append_grows_and_old_refs_keep_their_rows(tmp_path: Path) -> None:
    store = ZarrStore(str(tmp_path), chunk_bytes=256)
    ref = store.put(np.zeros((10, 4)), "a")
    meta = store.append("a", np.ones((7, 4)))
    assert meta.rows == 17 and meta.content_hash != ref.content_hash
    np.testing.assert_array_equal(store.get("a")[10:], np.ones((7, 4)))
    assert ref.resolve().shape == (10, 4)  # a reference taken before the append
    with pytest.raises(ValidationError, match="shape"):
        store.append("a", np.ones((2, 5)))


def test_get_rows_on_s3_fetches_only_the_touched_chunks(moto: MotoServer, bucket: str) -> None:
    store = ZarrStore(
        f"s3://{bucket}/z",
        key=KEY,
        secret=SECRET,
        endpoint_url=moto.endpoint,
        chunk_bytes=8 * 4 * 1000,  # 1000 rows of 4 float64 per chunk
    )
    data = np.arange(100_000 * 4, dtype=np.float64).reshape(-1, 4)  # 100 chunks
    store.put(data, "big")
    fresh = ZarrStore(f"s3://{bucket}/z", key=KEY, secret=SECRET, endpoint_url=moto.endpoint)
    before = len(moto.requests())
    rows = fresh.get_rows("big", 41_500, 1_000)  # rows in chunks 41 and 42
    np.testing.assert_array_equal(rows, data[41_500:42_500])
    chunk_gets = [r for r in moto.requests()[before:] if r.startswith("GET ") and "/big/c/" in r]
    assert sorted(r.split()[1].rsplit("/c/", 1)[1] for r in chunk_gets) == ["41/0", "42/0"]


def test_append_on_s3_writes_only_new_chunks(moto: MotoServer, bucket: str) -> None:
    store = ZarrStore(
        f"s3://{bucket}/z",
        key=KEY,
        secret=SECRET,
        endpoint_url=moto.endpoint,
        chunk_bytes=8 * 10,
    )
    store.put(np.zeros((100, 1)), "a")  # 10 chunks of 10 rows
    before = len(moto.requests())
    store.append("a", np.ones((20, 1)))
    puts = [r for r in moto.requests()[before:] if r.startswith("PUT ") and "/a/c/" in r]
    assert len(puts) == 2
    assert store.get("a").sum() == 20


def test_corrupt_chunk_is_detected(tmp_path: Path) -> None:
    store = ZarrStore(str(tmp_path), chunk_bytes=8 * 100)
    store.put(np.arange(1000, dtype=np.float64).reshape(-1, 1), "x")
    chunk = tmp_path / "x" / "c" / "3" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    chunk.write_bytes(bytes(raw))
    with pytest.raises(StoreCorruptError, match=r"'x'.*chunks 2\.\.3"):
        store.get_rows("x", 250, 100)
    np.testing.assert_array_equal(store.get_rows("x", 0, 3).ravel(), [0, 1, 2])


def test_missing_array_names_store_and_key(tmp_path: Path) -> None:
    store = ZarrStore(str(tmp_path))
    with pytest.raises(StoreKeyError, match=r"ZarrStore\(zarr://.*'nope'"):
        store.get("nope")
    assert not store.exists("nope")
    with pytest.raises(StoreKeyError):
        store.remove("nope")


def test_unreachable_s3_endpoint_is_one_clear_error(capfd: pytest.CaptureFixture[str]) -> None:
    from soma.data import StoreUnreachableError

    with pytest.raises(StoreUnreachableError, match=r"zarr\+s3://some-bucket/x.*127\.0\.0\.1:9"):
        ZarrStore(
            "s3://some-bucket/x",
            key=KEY,
            secret=SECRET,
            endpoint_url="http://127.0.0.1:9",
            timeout_s=1.0,
        )
    assert "Exception ignored" not in capfd.readouterr().err  # no stray coroutine tracebacks


def test_wrong_credentials_on_s3(moto_auth: MotoServer) -> None:
    from soma.data import StoreAuthError
    from tests.data.conftest import make_bucket

    make_bucket(moto_auth, "zarr-auth")
    with pytest.raises(StoreAuthError) as info:
        ZarrStore(
            "s3://zarr-auth/z",
            key="wrong-key",
            secret="wrong-secret-abc",
            endpoint_url=moto_auth.endpoint,
        )
    assert "zarr-auth" in str(info.value) and "wrong-secret-abc" not in str(info.value)


def test_regression_a_short_key_is_masked_only_as_a_whole_token() -> None:
    # Masking the one-letter key "k" used to turn "some-bucket" into "some-buc***et".
    from soma.data.s3 import scrub_secrets

    assert scrub_secrets("GET /some-bucket/x key=k", ("k",)) == "GET /some-bucket/x key=***"
    assert scrub_secrets("a wJalrXUtnFEMI/K7MDENG b", ("wJalrXUtnFEMI/K7MDENG",)) == "a *** b"
