"""The result cache: a seam with tiers that plug in.

``Cache`` (memory LRU over an optional disk folder) is what graphs use by default.
Recipes for keys live in :mod:`soma.cache.keys`.
"""

from __future__ import annotations

from soma.cache._cache import Cache, CacheStats

__all__ = ["Cache", "CacheStats"]
