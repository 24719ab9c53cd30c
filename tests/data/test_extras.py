"""A missing optional dependency is one clear error naming the extra to install."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from soma.data import CachedStore, MissingExtraError, open_store


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [("s3fs", "s3://some-bucket/x", "s3"), ("zarr", "zarr:///tmp/soma-no-zarr", "zarr")],
)
def test_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, url: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    with pytest.raises(MissingExtraError, match=rf"pip install 'soma-research\[{extra}\]'"):
        open_store(url, timeout_s=1.0)


def test_parquet_source_without_pyarrow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from soma.data import ParquetChunks

    (tmp_path / "t.parquet").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingExtraError, match=r"\[arrow\]"):
        ParquetChunks(tmp_path / "t.parquet", 10)


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown store scheme 'ftp'"):
        open_store("ftp://host/x")


def test_cached_store_in_front_of_zarr(tmp_path: Path) -> None:
    zarr_store = pytest.importorskip("soma.data.zarr").ZarrStore(str(tmp_path / "z"))
    ref = zarr_store.put(np.arange(40.0).reshape(20, 2), "a")
    cached = CachedStore(zarr_store, tmp_path / "cache")
    np.testing.assert_array_equal(cached.resolve(ref), np.arange(40.0).reshape(20, 2))
    np.testing.assert_array_equal(cached.get_rows("a", 18, 5), [[36, 37], [38, 39]])
    stats = cached.stats()
    assert (stats.misses, stats.hits, stats.remote_reads) == (1, 1, 1)
    assert cached.meta("a").content_hash == ref.content_hash
