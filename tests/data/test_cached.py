"""CachedStore: hits served from the local folder (remote reads counted at the server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soma.data import CachedStore, LocalStore
from tests.data.conftest import KEY, SECRET, MotoServer

s3 = pytest.importorskip("soma.data.s3")


def _remote(moto: MotoServer, bucket: str) -> s3.S3Store:
    return s3.S3Store(bucket, "remote", key=KEY, secret=SECRET, endpoint_url=moto.endpoint)


def test_hits_are_served_locally(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    remote = _remote(moto, bucket)
    remote.put(np.arange(1000.0), "x")  # written by someone else
    cached = CachedStore(remote, tmp_path / "cache", max_bytes=1 << 20)
    np.testing.assert_array_equal(cached.get("x"), np.arange(1000.0))
    gets_after_miss = moto.gets(f"/{bucket}/remote/x")
    reads_after_miss = remote.reads
    for _ in range(5):
        np.testing.assert_array_equal(cached.get("x"), np.arange(1000.0))
        assert cached.meta("x").rows == 1000
        np.testing.assert_array_equal(cached.get_rows("x", 10, 2), [10.0, 11.0])
    assert moto.gets(f"/{bucket}/remote/x") == gets_after_miss  # the server saw no more GETs
    assert remote.reads == reads_after_miss
    stats = cached.stats()
    assert (stats.misses, stats.hits, stats.remote_reads) == (1, 10, 1)


def test_put_writes_through_and_a_new_process_reuses_the_folder(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    remote = _remote(moto, bucket)
    ref = CachedStore(remote, tmp_path / "c").put({"a": [1, 2]}, "cfg")
    assert remote.get("cfg") == {"a": [1, 2]}
    again = CachedStore(_remote(moto, bucket), tmp_path / "c")  # as a restarted process would
    before = moto.gets(f"/{bucket}/remote/cfg")
    assert again.resolve(ref) == {"a": [1, 2]}
    assert moto.gets(f"/{bucket}/remote/cfg") == before


def test_lru_is_bounded_by_bytes(tmp_path: Path) -> None:
    remote = LocalStore(tmp_path / "remote")
    for i in range(6):
        remote.put(np.full(10_000, float(i)), f"k{i}")  # ~80 kB each
    cached = CachedStore(remote, tmp_path / "cache", max_bytes=250_000)
    for i in range(6):
        cached.get(f"k{i}")
    stats = cached.stats()
    assert stats.bytes <= 250_000 and stats.entries == 3 and stats.evictions == 3
    cached.get("k5")  # still cached (most recent)
    cached.get("k0")  # evicted earlier: a miss
    assert cached.stats().misses == 7


def test_an_object_larger_than_the_budget_is_not_copied(tmp_path: Path) -> None:
    remote = LocalStore(tmp_path / "remote")
    remote.put(np.zeros(100_000), "big")
    cached = CachedStore(remote, tmp_path / "cache", max_bytes=1000)
    assert cached.get("big").shape == (100_000,)
    assert cached.stats().entries == 0


def test_regression_refs_from_a_cached_put_resolve_through_the_cache(tmp_path: Path) -> None:
    # The remote store's put used to re-register the remote for its URL, so references
    # resolved around the cache.
    remote = LocalStore(tmp_path / "remote")
    cached = CachedStore(remote, tmp_path / "cache")
    ref = cached.put(np.arange(5.0), "x")
    reads = cached.stats().remote_reads
    np.testing.assert_array_equal(ref.resolve(), np.arange(5.0))
    assert cached.stats().hits == 1 and cached.stats().remote_reads == reads
