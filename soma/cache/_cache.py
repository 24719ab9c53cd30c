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
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soma.errors import CacheError, ValidationError

__all__ = ["Cache", "CacheStats"]

_log = logging.getLogger("soma.cache")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the Cache object was made, plus what is stored now."""

    hits: int
    misses: int
    writes: int
    memory_entries: int
    disk_entries: int
    disk_bytes: int
    memory_hits: int = 0
    disk_hits: int = 0
    corrupt_entries: int = 0


class Cache:
    """In-memory LRU (``memory_items`` entries) over an optional on-disk folder (``path``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, memory_items: int = 256) -> None:
        _check_memory_items(memory_items)
        self.path: Path | None = Path(path).expanduser() if path is not None else None
        if self.path is not None:
            if self.path.exists() and not self.path.is_dir():
                raise ValidationError("path", f"{self.path} exists and is not a folder")
            self.path.mkdir(parents=True, exist_ok=True)
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

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss."""
        found, value, _tier = self.lookup(key)
        return found, value

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
        return self.path is not None and (self._entry_dir(key) / f"{key}.meta").exists()

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
        for file in self._entry_files():
            if file.suffix == ".meta":
                entries += 1
            size += file.stat().st_size
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
        shards = set()
        for file in self._entry_files(leftovers=True):
            file.unlink(missing_ok=True)
            shards.add(file.parent)
        for shard in shards:
            with contextlib.suppress(OSError):
                shard.rmdir()  # only when empty

    def _entry_files(self, *, leftovers: bool = False) -> list[Path]:
        """The files of the disk tier: entries (and, with ``leftovers``, temp files)."""
        if self.path is None or not self.path.is_dir():
            return []
        found = []
        for shard in self.path.iterdir():
            if not (shard.is_dir() and _is_hex(shard.name) and len(shard.name) == 2):
                continue
            for file in shard.iterdir():
                name = file.name
                temp = name.startswith(".") and name.endswith(".tmp")  # see _atomic_write
                stem, _, suffix = name.removeprefix(".").partition(".")
                if not (_is_hex(stem) and stem.startswith(shard.name) and file.is_file()):
                    continue
                if (leftovers and temp) or (not temp and suffix in _ENTRY_SUFFIXES):
                    found.append(file)
        return found

    # -- disk tier -----------------------------------------------------------------------

    def _entry_dir(self, key: str) -> Path:
        assert self.path is not None
        if len(key) < 8 or not _is_hex(key):
            raise CacheError(f"cache key must be a hex digest, got {key!r}")
        return self.path / key[:2]

    def _disk_write(self, key: str, value: Any) -> None:
        np = sys.modules.get("numpy")
        if np is not None and type(value) is np.ndarray and not value.dtype.hasobject:
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            payload, fmt = buffer.getvalue(), "npy"
        else:
            import cloudpickle

            payload, fmt = cloudpickle.dumps(value, protocol=5), "pkl"
        folder = self._entry_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": fmt, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        _atomic_write(folder / f"{key}.{fmt}", payload)
        _atomic_write(folder / f"{key}.meta", json.dumps(meta).encode())

    def _disk_read(self, key: str) -> Any:
        folder = self._entry_dir(key)
        meta_path = folder / f"{key}.meta"
        try:
            meta = json.loads(meta_path.read_bytes())
            fmt = meta["format"]
            payload = (folder / f"{key}.{fmt}").read_bytes()
        except FileNotFoundError:
            return _MISSING
        except (OSError, ValueError, KeyError, TypeError):
            self._discard(key, "unreadable metadata")
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
        folder = self._entry_dir(key)
        for suffix in (".meta", ".npy", ".pkl"):
            (folder / f"{key}{suffix}").unlink(missing_ok=True)


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


_ENTRY_SUFFIXES = ("meta", "npy", "pkl")
_HEX_DIGITS = frozenset("0123456789abcdef")


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEX_DIGITS for c in text)


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
