"""``CachedStore``: a byte-bounded local LRU in front of a remote store.

Reads of a cached object are served from the local folder — the remote store is not
asked, not even for metadata (``stats().remote_reads`` counts what it is asked). A miss
reads the remote object once and keeps a local copy; ``put`` writes through (remote, then
local). Objects larger than the whole budget are not copied. Ranged reads of an object
that is not cached go to the remote store and are not cached (they would copy the whole
object to serve a few rows).

The local copy of an object written by another process to the same remote key is not
noticed: keys are meant to be immutable (``put`` without a key is content-addressed).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.data._base import DataStore, check_key
from soma.data._blob import DATA_SUFFIX, META_SUFFIX, BlobStore
from soma.data._errors import StoreError
from soma.data._meta import StoreMeta
from soma.data.local import LocalStore
from soma.errors import ValidationError

if TYPE_CHECKING:
    from soma.data.ref import DataRef

__all__ = ["CacheStats", "CachedStore"]

_REMOTE_SUFFIX = ".remote.json"  # the remote store's metadata (its content hash) beside the copy


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    remote_reads: int
    evictions: int
    entries: int
    bytes: int
    max_bytes: int


class CachedStore(DataStore):
    """``remote`` behind a local folder of at most ``max_bytes`` bytes."""

    def __init__(
        self, remote: DataStore, cache_dir: str | os.PathLike[str], max_bytes: int = 1 << 30
    ) -> None:
        if not isinstance(remote, DataStore):
            raise ValidationError("remote", f"expected a DataStore, got {remote!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValidationError("max_bytes", f"expected an int >= 1, got {max_bytes!r}")
        self.remote = remote
        self.local = LocalStore(cache_dir)
        self.max_bytes = max_bytes
        self.url = remote.url  # references resolve here, through the cache, in this process
        self._lock = threading.RLock()
        self._lru: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._remote_reads = self._evictions = 0
        self._load_index()
        from soma.data._open import remember_store

        remember_store(self)  # references to the remote store resolve through the cache

    def public_options(self) -> dict[str, str]:
        return self.remote.public_options()  # elsewhere a reference opens the remote store

    def __repr__(self) -> str:
        return f"CachedStore({self.remote!r}, cache={self.local.root}, max_bytes={self.max_bytes})"

    # -- the LRU --------------------------------------------------------------------------

    def _files(self, key: str) -> list[Path]:
        root = self.local.root
        return [root / f"{key}{suffix}" for suffix in (DATA_SUFFIX, META_SUFFIX, _REMOTE_SUFFIX)]

    def _load_index(self) -> None:
        # Entries left by an earlier process, oldest use first (a hit touches the mtime).
        found = []
        for key in self.local.keys():  # noqa: SIM118 (a store, not a dict)
            files = self._files(key)
            if not files[2].is_file():
                continue
            found.append((files[1].stat().st_mtime, key, sum(f.stat().st_size for f in files)))
        for _mtime, key, size in sorted(found):
            self._lru[key] = size
            self._bytes += size
        self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._lru:
            key, size = self._lru.popitem(last=False)
            self._bytes -= size
            self._evictions += 1
            for file in self._files(key):
                file.unlink(missing_ok=True)

    def _drop(self, key: str) -> None:
        with self._lock:
            size = self._lru.pop(key, None)
            if size is not None:
                self._bytes -= size
            for file in self._files(key):
                file.unlink(missing_ok=True)

    def _cached_meta(self, key: str) -> StoreMeta | None:
        with self._lock:
            if key not in self._lru:
                return None
            self._lru.move_to_end(key)
        path = self._files(key)[2]
        try:
            os.utime(self._files(key)[1])
            return StoreMeta.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            self._drop(key)  # a damaged or vanished copy: fall back to the remote
            return None

    def _keep(
        self,
        key: str,
        remote_meta: StoreMeta,
        value: Any = None,
        payload: bytes = b"",
        local_meta: StoreMeta | None = None,
    ) -> None:
        if remote_meta.nbytes > self.max_bytes:
            return
        self._drop(key)
        if local_meta is not None:
            self.local.put_encoded(key, payload, local_meta)
        else:
            self.local.put(value, key)
        self.local._write(key + _REMOTE_SUFFIX, key, remote_meta.model_dump_json().encode())
        size = sum(f.stat().st_size for f in self._files(key))
        with self._lock:
            self._lru[key] = size
            self._bytes += size
            self._evict()

    def _fetch(self, key: str) -> tuple[Any, StoreMeta]:
        """Read ``key`` from the remote store (one object read for blob stores) and keep it."""
        with self._lock:
            self._misses += 1
            self._remote_reads += 1
        if isinstance(self.remote, BlobStore):
            payload, meta = self.remote.get_encoded(key)
            self._keep(key, meta, payload=payload, local_meta=meta)
            return self.local._decode(key, payload, meta), meta
        meta = self.remote.meta(key)
        value = self.remote.get(key)
        self._keep(key, meta, value=value)
        return value, meta

    def _hit(self) -> None:
        with self._lock:
            self._hits += 1

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                remote_reads=self._remote_reads,
                evictions=self._evictions,
                entries=len(self._lru),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
            )

    # -- the store interface ------------------------------------------------------------

    def put(self, value: Any, key: str | None = None) -> DataRef:
        ref = self.remote.put(value, key)
        self._keep(ref.key, self.remote_meta_from_ref(ref), value=value)
        return ref

    @staticmethod
    def remote_meta_from_ref(ref: DataRef) -> StoreMeta:
        return StoreMeta(
            key=ref.key,
            kind=ref.kind,
            format="ref",
            nbytes=ref.nbytes or 0,
            content_hash=ref.content_hash,
            rows=ref.rows,
            shape=ref.shape,
            dtype=ref.dtype,
        )

    def get(self, key: str) -> Any:
        check_key(key)
        if self._cached_meta(key) is not None:
            try:
                value = self.local.get(key)
            except StoreError:
                self._drop(key)
            else:
                self._hit()
                return value
        return self._fetch(key)[0]

    def resolve(self, ref: DataRef) -> Any:
        if ref.count is not None:
            return self.get_rows(ref.key, ref.start, ref.count)
        meta = self._cached_meta(check_key(ref.key))
        if meta is not None and meta.content_hash == ref.content_hash:
            self._hit()
            return self.local.get(ref.key)
        value, meta = self._fetch(ref.key)
        if meta.content_hash == ref.content_hash:
            return value
        # Changed since the reference was taken: the remote store decides (an error for a
        # replaced object, the first rows for a Zarr array that grew).
        return self.remote.resolve(ref)

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            if key in self._lru:
                return True
        return self.remote.exists(key)

    def remove(self, key: str) -> None:
        self._drop(check_key(key))
        self.remote.remove(key)

    def meta(self, key: str) -> StoreMeta:
        cached = self._cached_meta(check_key(key))
        if cached is not None:
            return cached
        with self._lock:
            self._remote_reads += 1
        return self.remote.meta(key)

    def get_rows(self, key: str, start: int, n: int) -> Any:
        if self._cached_meta(check_key(key)) is not None:
            self._hit()
            return self.local.get_rows(key, start, n)
        with self._lock:
            self._remote_reads += 1
        return self.remote.get_rows(key, start, n)

    def append(self, key: str, rows: Any) -> StoreMeta:
        self._drop(check_key(key))
        return self.remote.append(key, rows)

    def keys(self, prefix: str = "") -> list[str]:
        return self.remote.keys(prefix)
