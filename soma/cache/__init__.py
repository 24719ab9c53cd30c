"""The result cache, as a seam that stores plug into.

* :class:`CacheStore` — what a graph needs from a cache (``lookup``/``get``/``put``,
  ``in``, ``clear``, ``stats``). ``Graph(cache=...)`` accepts any implementation.
* :class:`Cache` — the default store: an in-memory LRU tier in front of an optional disk
  tier. The disk tier serializes values (``.npy`` / cloudpickle plus a checksummed
  ``.meta``) onto an :class:`EntryStore` — bytes by name (``get``/``put``/``exists``/
  ``remove``/``names``). :class:`FolderEntries` is the local folder; a remote tier (an
  object store) implements ``EntryStore`` and keeps the same layout and checks.
* :mod:`soma.cache.keys` — every recipe that names a cached value, as pure functions.

A new store subclasses ``CacheStore`` (a whole new cache) or ``Cache`` with another
disk tier (see ``soma.data.StoreCache``).
"""

from __future__ import annotations

from soma.cache._base import CacheStats, CacheStore, EntryStore
from soma.cache._cache import Cache
from soma.cache._folder import FolderEntries

__all__ = ["Cache", "CacheStats", "CacheStore", "EntryStore", "FolderEntries"]
