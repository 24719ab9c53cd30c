"""The result cache's disk tier on a store: shared through S3, corrupt entries are misses."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest

from soma import Filter, Graph
from soma.data import LocalStore
from soma.data.cache_tier import StoreCache
from tests.data.conftest import KEY, SECRET, MotoServer

calls: list[str] = []


class Slow(Filter):
    def fit(self, x, y=None):
        calls.append("fit")
        return float(np.mean(x))

    def forward(self, x, state):
        calls.append("forward")
        return x - state


def test_two_machines_share_one_cache_on_s3(moto: MotoServer, bucket: str) -> None:
    s3 = pytest.importorskip("soma.data.s3")

    def machine() -> StoreCache:  # each "machine" has its own store object and memory tier
        store = s3.S3Store(bucket, "shared", key=KEY, secret=SECRET, endpoint_url=moto.endpoint)
        return StoreCache(store, memory_items=0)

    data = np.arange(1000.0)
    calls.clear()
    first = Graph.somatize(Slow(), cache=machine())
    expected = first.fit_forward(data)
    assert calls == ["fit", "forward"]
    second = Graph.somatize(Slow(), cache=machine())
    np.testing.assert_array_equal(second.fit_forward(data), expected)
    assert calls == ["fit", "forward"]  # nothing recomputed on the second machine
    stats = second.cache.stats()
    assert stats.disk_hits >= 1 and stats.disk_entries >= 2
    assert SECRET not in repr(second.cache)


def test_corrupt_entry_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    cache = StoreCache(LocalStore(tmp_path), memory_items=0)
    key = "cd" * 32
    cache.put(key, np.arange(10))
    data = tmp_path / "cache" / "cd" / f"{key}.data"
    data.write_bytes(data.read_bytes()[:-3])
    assert cache.get(key) == (False, None)
    assert cache.stats().corrupt_entries == 1 and key not in cache


def test_clear_removes_only_cache_entries(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put([1], "user-data")
    cache = StoreCache(store)
    cache.put("ef" * 32, {"a": 1})
    cache.clear()
    assert store.keys("") == ["user-data"]


@pytest.mark.parametrize("module", ["soma.data.cache_tier", "soma.data.ref", "soma.data.local"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_size_policy_offloads_large_outputs_to_the_store(tmp_path: Path) -> None:
    cache = StoreCache(LocalStore(tmp_path), memory_items=10, offload_bytes=1 << 16)
    big, small = np.ones(100_000), np.ones(10)
    cache.put("aa" * 32, big)
    cache.put("bb" * 32, small)
    assert cache.offloaded == 1
    assert all(not isinstance(v, np.ndarray) or v.nbytes < 1 << 16 for v in cache._memory.values())
    found, value, tier = cache.lookup("aa" * 32)
    assert found and tier == "store"
    np.testing.assert_array_equal(value, big)
    assert cache.lookup("bb" * 32)[2] == "memory"
