"""A content-addressed, two-tier result cache: in-memory LRU in front of an on-disk folder.

Keys are Merkle keys computed by the runtime (``soma.fingerprint``); values are fitted
states and node outputs. One ``Cache`` may be shared by many graphs and threads at once.

On disk every entry is two files in ``<path>/<key[:2]>/``: the payload (``<key>.npy`` for
numpy arrays, written with ``numpy.save`` and readable by numpy; ``<key>.pkl`` for any other
value, written with cloudpickle) and ``<key>.meta`` (JSON: format, size, SHA-256 of the
payload). Both are written to a temporary file and renamed into place, payload first, so
a reader sees a complete entry or none. An entry whose payload does not match its
checksum (truncated, corrupted) is deleted and reported as a miss, never returned.

>>> cache = Cache()                       # memory only
>>> cache.put("ab" * 32, [1, 2, 3])
True
>>> cache.get("ab" * 32)
(True, [1, 2, 3])
>>> cache.stats().hits
1
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from soma.cache._base import CacheStats, CacheStore
from soma.cache._folder import FolderEntries, is_hex
from soma.errors import CacheError, ValidationError

__all__ = ["Cache", "CacheStats"]

_log = logging.getLogger("soma.cache")
_MISSING = object()


class Cache(CacheStore):
    """In-memory LRU (``memory_items`` entries) over an optional on-disk folder (``path``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, memory_items: int = 256) -> None:
        _check_memory_items(memory_items)
        self.path: Path | None = Path(path).expanduser() if path is not None else None
        if self.path is not None:
            if self.path.exists() and not self.path.is_dir():
                raise ValidationError("path", f"{self.path} exists and is not a folder")
            self.path.mkdir(parents=True, exist_ok=True)
        self._entries = FolderEntries(self.path) if self.path is not None else None
        self._memory_items = memory_items
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._writes = 0
        self._memory_hits = self._disk_hits = self._corrupt = 0

    @property
    def memory_items(self) -> int:
        """How many entries the in-memory LRU keeps (0: none, every hit reads the disk)."""
        return self._memory_items

    @memory_items.setter
    def memory_items(self, value: int) -> None:
        # A negative size used to make the LRU trim loop pop from an empty dict on put().
        _check_memory_items(value)
        with self._lock:
            self._memory_items = value
            self._trim()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory only"
        return f"Cache({where}, memory_items={self.memory_items})"

    # -- lookups -------------------------------------------------------------------------

    def lookup(self, key: str) -> tuple[bool, Any, str | None]:
        """Like :meth:`get`, also naming the tier that served it (``"memory"``/``"disk"``)."""
        with self._lock:
            value = self._memory.get(key, _MISSING)
            if value is not _MISSING:
                self._memory.move_to_end(key)
                self._hits += 1
                self._memory_hits += 1
        if value is not _MISSING:
            return True, _thaw(value), "memory"
        if self.path is not None:
            value = self._disk_read(key)
            if value is not _MISSING:
                frozen = _freeze(value) if self._memory_items else value
                with self._lock:
                    self._remember(key, frozen)
                    self._hits += 1
                    self._disk_hits += 1
                return True, value, "disk"
        with self._lock:
            self._misses += 1
        return False, None, None

    def __contains__(self, key: str) -> bool:
        with self._lock:
            if key in self._memory:
                return True
        if self._entries is None:
            return False
        self._check_key(key)
        return self._entries.exists(f"{key}.meta")

    def put(self, key: str, value: Any) -> bool:
        """Store ``value``; False (and a log line) when it cannot be serialized to disk."""
        frozen = _freeze(value) if self._memory_items else value
        with self._lock:
            self._remember(key, frozen)
            self._writes += 1
        if self.path is None:
            return True
        try:
            self._disk_write(key, value)
        except Exception as exc:  # an unpicklable value: keep it in memory, warn once here
            _log.warning("soma cache: could not store %s on disk: %s", key[:12], exc)
            return False
        return True

    def _remember(self, key: str, value: Any) -> None:
        if self._memory_items == 0:
            return
        self._memory[key] = value
        self._memory.move_to_end(key)
        self._trim()

    def _trim(self) -> None:
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)

    # -- maintenance ---------------------------------------------------------------------

    def stats(self) -> CacheStats:
        entries = size = 0
        for name, nbytes in self._entries.names() if self._entries is not None else ():
            entries += name.endswith(".meta")
            size += nbytes
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                writes=self._writes,
                memory_entries=len(self._memory),
                disk_entries=entries,
                disk_bytes=size,
                memory_hits=self._memory_hits,
                disk_hits=self._disk_hits,
                corrupt_entries=self._corrupt,
            )

    def clear(self) -> None:
        """Drop every entry, in memory and on disk.

        Only the cache's own files go (``<hex key>.meta|.npy|.pkl`` in two-hex-digit shard
        folders, and their atomic-write leftovers): a cache pointed at a folder that holds
        other things deletes none of them.
        """
        with self._lock:
            self._memory.clear()
        if self._entries is not None:
            self._entries.clear()

    # -- disk tier -----------------------------------------------------------------------

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key) < 8 or not is_hex(key):
            raise CacheError(f"cache key must be a hex digest, got {key!r}")

    def _disk_write(self, key: str, value: Any) -> None:
        np = sys.modules.get("numpy")
        if np is not None and type(value) is np.ndarray and not value.dtype.hasobject:
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            payload, fmt = buffer.getvalue(), "npy"
        else:
            import cloudpickle

            payload, fmt = cloudpickle.dumps(value, protocol=5), "pkl"
        self._check_key(key)
        assert self._entries is not None
        meta = {
            "key": key,  # identity: an entry copied over another's is not taken for it
            "format": fmt,
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        # Payload first, then meta: a reader trusts an entry only once its meta exists.
        self._entries.put(f"{key}.{fmt}", payload)
        self._entries.put(f"{key}.meta", json.dumps(meta).encode())

    def _disk_read(self, key: str) -> Any:
        self._check_key(key)
        assert self._entries is not None
        try:
            raw = self._entries.get(f"{key}.meta")
            if raw is None:
                return _MISSING
            meta = json.loads(raw)
            fmt = meta["format"]
            payload = self._entries.get(f"{key}.{fmt}")
            if payload is None:
                return _MISSING
        except FileNotFoundError:
            return _MISSING
        except (OSError, ValueError, KeyError, TypeError):
            self._discard(key, "unreadable metadata")
            return _MISSING
        if meta.get("key") != key:
            self._discard(key, "the entry belongs to another key")
            return _MISSING
        if len(payload) != meta.get("size") or hashlib.sha256(payload).hexdigest() != meta.get(
            "sha256"
        ):
            self._discard(key, "checksum mismatch")
            return _MISSING
        try:
            if fmt == "npy":
                import numpy as np

                return np.load(io.BytesIO(payload), allow_pickle=False)
            import cloudpickle

            return cloudpickle.loads(payload)
        except Exception as exc:
            self._discard(key, f"cannot decode: {exc}")
            return _MISSING

    def _discard(self, key: str, reason: str) -> None:
        _log.warning("soma cache: entry %s is corrupt (%s); recomputing", key[:12], reason)
        with self._lock:
            self._corrupt += 1
        assert self._entries is not None
        for suffix in (".meta", ".npy", ".pkl"):
            # Whatever sits there (a folder, a file we may not delete) stays a miss, never an error.
            with contextlib.suppress(OSError):
                self._entries.remove(f"{key}{suffix}")


def _check_memory_items(value: Any) -> None:
    # 0 is meaningful (no memory tier: a disk-only cache, as `soma cache` opens one);
    # negative sizes and non-ints are mistakes.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("memory_items", f"expected an int >= 0, got {value!r}")


def _freeze(value: Any) -> Any:
    """The memory tier's private copy of a numpy array.

    A node's output is also its successors' input; a successor that edits its input in
    place (``x -= mean``) would otherwise edit the cached entry, and later runs would get
    the edited array as a cache hit. Other mutable values are stored as they are: filters
    must not edit their inputs in place (see soma.filter).
    """
    np = sys.modules.get("numpy")
    if np is not None and type(value) is np.ndarray and not value.dtype.hasobject:
        frozen = value.copy()
        frozen.flags.writeable = False
        return frozen
    return value


def _thaw(value: Any) -> Any:
    # A frozen array goes out as a fresh writable copy, so a run that edits it in place
    # behaves the same on a hit as on a miss (and the entry stays intact).
    np = sys.modules.get("numpy")
    if np is not None and type(value) is np.ndarray and not value.flags.writeable:
        return value.copy()
    return value
