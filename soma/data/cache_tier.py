"""The result cache's disk tier on any data store, so several machines share one cache.

``StoreTier`` keeps cache entries as store objects under ``<prefix>/<key[:2]>/<key>``
(arrays as ``.npy``, other values JSON or cloudpickle, each with its checksum): a corrupt
or unreadable entry is removed and reported as a miss, never returned. ``StoreCache`` is
the runtime's ``Cache`` (memory LRU in front) with that tier as its disk:

>>> import tempfile
>>> from soma.data import LocalStore
>>> cache = StoreCache(LocalStore(tempfile.mkdtemp()))
>>> cache.put("ab" * 32, [1, 2, 3])
True
>>> StoreCache(cache.store).get("ab" * 32)   # a fresh process would see it too
(True, [1, 2, 3])
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from soma.cache import Cache, CacheStats
from soma.data._base import DataStore
from soma.data._errors import StoreCorruptError, StoreError, StoreKeyError
from soma.errors import CacheError, ValidationError

__all__ = ["StoreCache", "StoreTier"]

_log = logging.getLogger("soma.data.cache")
_HEX = frozenset("0123456789abcdef")


class StoreTier:
    """Cache entries as objects in ``store`` under ``prefix``."""

    def __init__(self, store: DataStore, prefix: str = "cache") -> None:
        if not isinstance(store, DataStore):
            raise ValidationError("store", f"expected a DataStore, got {store!r}")
        self.store = store
        self.prefix = prefix.strip("/")
        self.corrupt = 0

    def _object(self, key: str) -> str:
        if len(key) < 8 or not set(key) <= _HEX:
            raise CacheError(f"cache key must be a hex digest, got {key!r}")
        return f"{self.prefix}/{key[:2]}/{key}"

    def read(self, key: str) -> tuple[bool, Any]:
        name = self._object(key)
        try:
            return True, self.store.get(name)
        except StoreKeyError:
            return False, None
        except StoreCorruptError as exc:
            _log.warning("soma cache: entry %s is corrupt (%s); recomputing", key[:12], exc)
            self.corrupt += 1
            self.remove(key)
            return False, None

    def write(self, key: str, value: Any) -> None:
        self.store.put(value, self._object(key))

    def contains(self, key: str) -> bool:
        return self.store.exists(self._object(key))

    def remove(self, key: str) -> None:
        with contextlib.suppress(StoreKeyError):
            self.store.remove(self._object(key))

    def keys(self) -> list[str]:
        return [name.rsplit("/", 1)[1] for name in self.store.keys(self.prefix + "/")]

    def size(self) -> tuple[int, int]:
        """(entries, stored bytes)."""
        names = self.store.keys(self.prefix + "/")
        return len(names), sum(self.store.meta(name).nbytes for name in names)

    def clear(self) -> None:
        for name in self.store.keys(self.prefix + "/"):
            self.store.remove(name)


class StoreCache(Cache):
    """A ``Cache`` whose disk tier lives in a data store (a folder, S3, a cached remote).

    ``path`` is kept for display only (the store's folder, or its URL); ``store`` is where
    entries live.
    """

    def __init__(
        self,
        store: DataStore,
        memory_items: int = 256,
        prefix: str = "cache",
        offload_bytes: int | None = None,
    ) -> None:
        super().__init__(None, memory_items)
        if offload_bytes is not None and (
            isinstance(offload_bytes, bool)
            or not isinstance(offload_bytes, int)
            or offload_bytes < 0
        ):
            raise ValidationError(
                "offload_bytes", f"expected an int >= 0 or None, got {offload_bytes!r}"
            )
        self.offload_bytes = offload_bytes
        self.offloaded = 0  # memory-tier entries kept in the store only
        self.tier = StoreTier(store, prefix)
        self.store = store
        root = getattr(store, "root", None)
        self.path = root if isinstance(root, Path) else Path(store.url)

    def __repr__(self) -> str:
        prefix, items = self.tier.prefix, self.memory_items
        return f"StoreCache({self.store!r}, prefix={prefix!r}, memory_items={items})"

    # Size policy: a large value lives in the store only; the memory tier keeps a marker,
    # so memory holds small entries whatever the outputs' sizes.
    def _remember(self, key: str, value: Any) -> None:
        limit = self.offload_bytes
        if limit is not None and _nbytes(value) >= limit:
            value = _OFFLOADED
            self.offloaded += 1
        super()._remember(key, value)

    def lookup(self, key: str) -> tuple[bool, Any, str | None]:
        found, value, tier = super().lookup(key)
        if not (found and value is _OFFLOADED):
            return found, value, tier
        hit, value = self.tier.read(key)
        if hit:
            return True, value, "store"
        with self._lock:
            self._memory.pop(key, None)  # the store lost it: a miss from now on
        return False, None, None

    # The disk-tier hooks of Cache, routed to the store.
    def _disk_read(self, key: str) -> Any:
        # Cache's "no entry" marker, from wherever Cache is defined (soma/cache moves).
        missing = sys.modules[Cache.__module__]._MISSING  # type: ignore[attr-defined]
        try:
            found, value = self.tier.read(key)
        except StoreError as exc:  # unreachable / refused: a miss, said once in the log
            _log.warning("soma cache: %s", exc)
            return missing
        with self._lock:
            self._corrupt = self.tier.corrupt
        return value if found else missing

    def _disk_write(self, key: str, value: Any) -> None:
        self.tier.write(key, value)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            if key in self._memory:
                return True
        return self.tier.contains(key)

    def stats(self) -> CacheStats:
        # Cache's counters, with the disk figures taken from the store.
        entries, size = self.tier.size()
        with self._lock:
            corrupt = self.tier.corrupt
        return dataclasses.replace(
            super().stats(), disk_entries=entries, disk_bytes=size, corrupt_entries=corrupt
        )

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
        self.tier.clear()


class _Offloaded:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<offloaded to the store>"


_OFFLOADED = _Offloaded()


def _nbytes(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    size = getattr(value, "nbytes", None)
    return size if isinstance(size, int) else 0
