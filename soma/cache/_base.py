"""The cache-store base class and the byte-entry interface a disk tier is written on."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["CacheStats", "CacheStore", "EntryStore"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache object was made, plus what is stored now."""

    hits: int
    misses: int
    writes: int
    memory_entries: int
    disk_entries: int
    disk_bytes: int
    memory_hits: int = 0
    disk_hits: int = 0
    corrupt_entries: int = 0


class CacheStore(abc.ABC):
    """What a graph needs from a cache: values by Merkle key (``soma.cache.keys``).

    Implementations must be safe to call from several threads at once, and must never
    return a value stored under another key: a corrupt or unreadable entry is a miss.
    """

    @abc.abstractmethod
    def lookup(self, key: str) -> tuple[bool, Any, str | None]:
        """``(True, value, tier)`` on a hit (``tier`` names where it came from, e.g.
        ``"memory"``, ``"disk"``), ``(False, None, None)`` on a miss."""

    @abc.abstractmethod
    def put(self, key: str, value: Any) -> bool:
        """Store ``value``; False when it could only be kept partly (e.g. not on disk)."""

    @abc.abstractmethod
    def __contains__(self, key: str) -> bool: ...

    @abc.abstractmethod
    def clear(self) -> None:
        """Drop every entry this store holds (and nothing else)."""

    @abc.abstractmethod
    def stats(self) -> CacheStats: ...

    def get(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` on a hit, ``(False, None)`` on a miss."""
        found, value, _tier = self.lookup(key)
        return found, value


class EntryStore(abc.ABC):
    """Bytes by name: what a disk tier is written on (a local folder, an object store).

    Names are ``<hex key>.<suffix>`` (``.npy``/``.pkl`` payloads, ``.meta`` JSON). ``put``
    must be atomic per name (a reader sees the whole bytes or none). A remote tier (an S3
    bucket, a data store) implements these methods and keeps the serialization, checksums
    and write order of :class:`soma.cache.Cache`'s disk tier.
    """

    @abc.abstractmethod
    def get(self, name: str) -> bytes | None:
        """The bytes stored under ``name``, or None when there are none."""

    @abc.abstractmethod
    def put(self, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Delete ``name``; no error when it is not there."""

    @abc.abstractmethod
    def names(self) -> Iterable[tuple[str, int]]:
        """Every stored entry as ``(name, size in bytes)``."""
