"""Data stores, lazy references and streaming: data that does not fit in one process.

- Stores (:class:`DataStore`): :class:`LocalStore` (a folder), :class:`S3Store` (any
  S3-compatible service, extra ``[s3]``), :class:`ZarrStore` (chunked, compressed arrays on
  disk or S3, extra ``[zarr]``), :class:`CachedStore` (a byte-bounded local LRU in front of
  a remote store). :func:`open_store` makes one from a URL.
- :class:`DataRef`: a serialisable reference that resolves where it is used and keys the
  result cache by the content hash taken at ``put``.
- Stream sources (:mod:`soma.data.sources`) and :func:`stream` (a graph over chunks).
"""

from __future__ import annotations

from typing import Any

from soma.data._base import DataStore
from soma.data._errors import (
    MissingExtraError,
    StoreAuthError,
    StoreCorruptError,
    StoreError,
    StoreKeyError,
    StoreUnreachableError,
    StreamError,
)
from soma.data._meta import StoreMeta
from soma.data._open import open_ref, open_store, split_data_url
from soma.data.local import LocalStore
from soma.data.ref import DataRef, resolve_refs
from soma.data.sources import (
    ArrayChunks,
    CSVChunks,
    GeneratorChunks,
    JSONLinesChunks,
    ParquetChunks,
)

__all__ = [
    "ArrayChunks",
    "CSVChunks",
    "CachedStore",
    "DataRef",
    "DataStore",
    "GeneratorChunks",
    "JSONLinesChunks",
    "LocalStore",
    "MissingExtraError",
    "ParquetChunks",
    "S3Store",
    "StoreAuthError",
    "StoreCorruptError",
    "StoreError",
    "StoreKeyError",
    "StoreMeta",
    "StoreUnreachableError",
    "Stream",
    "StreamError",
    "ZarrStore",
    "open_ref",
    "open_store",
    "resolve_refs",
    "split_data_url",
]

_LAZY = {
    "S3Store": "soma.data.s3",
    "ZarrStore": "soma.data.zarr",
    "CachedStore": "soma.data.cached",
    "Stream": "soma.data._stream",
}


def __getattr__(name: str) -> Any:
    # s3fs and zarr are optional and slow to import: load their stores on first use.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'soma.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
