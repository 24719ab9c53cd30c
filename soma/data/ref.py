"""``DataRef``: a lazy, serialisable reference to a value in a store.

A DataRef carries the store's URL, the key, and what ``put`` learned while writing (kind,
rows, shape, dtype, size, content hash). It resolves where it is used — ``ref.resolve()``
opens the store (the same store object in this process; elsewhere — a subprocess, a
cluster worker — a fresh one from the URL, the reference's ``store_options`` such as the
S3 endpoint, and that process's environment credentials) — and the
result cache keys it by its content hash, so a cached run never reads the data again.

>>> import tempfile, numpy as np
>>> from soma.data import LocalStore
>>> ref = LocalStore(tempfile.mkdtemp()).put(np.zeros((4, 2)), "x")
>>> ref.rows, ref.shape, ref.kind
(4, (4, 2), 'array')
>>> DataRef.model_validate_json(ref.model_dump_json()) == ref
True
>>> ref.resolve().shape
(4, 2)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from soma.data._meta import Kind, StoreMeta

if TYPE_CHECKING:
    from soma.data._base import DataStore

__all__ = ["DataRef", "contains_refs", "keyed_refs", "resolve_refs"]


class DataRef(BaseModel):
    """A value in a store, by reference. Frozen, hashable, JSON-serialisable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    key: str
    content_hash: str
    kind: Kind
    rows: int | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    nbytes: int | None = None
    start: int = 0
    #: rows of a slice (``ref[a:b]``); None: the whole object
    count: int | None = None
    #: what another process needs besides ``store`` to open it (an S3 endpoint, a region),
    #: as sorted pairs; never credentials: they come from the environment where it resolves
    store_options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_meta(cls, store: DataStore, meta: StoreMeta) -> DataRef:
        from soma.data._open import remember_store

        # A store already known for this URL keeps its place (a CachedStore in front of
        # this very store, say): references resolve through it.
        remember_store(store, replace=False)
        return cls(
            store=store.url,
            key=meta.key,
            content_hash=meta.content_hash,
            kind=meta.kind,
            rows=meta.rows,
            shape=meta.shape,
            dtype=meta.dtype,
            nbytes=meta.nbytes,
            store_options=tuple(sorted(store.public_options().items())),
        )

    @property
    def __soma_content_key__(self) -> str:
        # The protocol soma.cache.keys reads to key a graph input without reading it.
        return self.cache_key

    @property
    def cache_key(self) -> str:
        """What the result cache keys this reference by (content hash, plus the slice)."""
        if self.count is None and self.start == 0:
            return self.content_hash
        return f"{self.content_hash}[{self.start}:{self.start + (self.count or 0)}]"

    def open_store(self) -> DataStore:
        """The store open under this URL in this process, else a new one from the URL, the
        reference's store options and the environment's credentials."""
        from soma.data._open import store_for

        return store_for(self.store, dict(self.store_options))

    def resolve(self) -> Any:
        """The value (only the referenced rows for a slice)."""
        return self.open_store().resolve(self)

    def __getitem__(self, rows: slice) -> DataRef:
        """A reference to rows ``a:b`` (step 1) — nothing is read until it resolves."""
        if not isinstance(rows, slice) or rows.step not in (None, 1) or self.rows is None:
            raise TypeError("a DataRef with rows can be sliced as ref[a:b]")
        total = self.count if self.count is not None else self.rows
        lo, hi, _ = rows.indices(total)
        hi = max(lo, hi)
        shape = (hi - lo, *self.shape[1:]) if self.shape else None
        return self.model_copy(
            update={"start": self.start + lo, "count": hi - lo, "rows": hi - lo, "shape": shape}
        )

    def __repr__(self) -> str:
        what = self.kind
        if self.shape is not None:
            what += f" {self.dtype} {self.shape}"
        elif self.rows is not None:
            what += f" {self.rows} rows"
        window = f"[{self.start}:{self.start + self.count}]" if self.count is not None else ""
        return (
            f"DataRef({self.store} :: {self.key}{window}, {what}, sha256 {self.content_hash[:12]})"
        )

    __str__ = __repr__


def resolve_refs(value: Any) -> Any:
    """``value`` with every DataRef in it (top level, or in a dict, list, tuple or
    dataclass such as ``Splits``) resolved."""
    return _map_refs(value, lambda ref: ref.resolve())


def resolve_input(value: Any) -> Any:
    """A graph input with its DataRefs resolved: the input itself, or the direct items of
    a tuple, list or dict (one level, so a forward over a long list stays cheap)."""
    if isinstance(value, DataRef):
        return value.resolve()
    if type(value) in (tuple, list) and any(isinstance(v, DataRef) for v in value[:16]):
        return type(value)(resolve_refs(v) for v in value)
    if type(value) is dict and any(isinstance(v, DataRef) for v in value.values()):
        return {k: resolve_refs(v) for k, v in value.items()}
    return value


def keyed_refs(value: Any) -> Any:
    """``value`` with every DataRef replaced by ``("DataRef", ref.cache_key)``: hashing it
    gives a content key without reading the referenced data."""
    return _map_refs(value, lambda ref: ("DataRef", ref.cache_key))


def _map_refs(value: Any, action: Any) -> Any:
    if isinstance(value, DataRef):
        return action(value)
    if type(value) is dict:
        return {k: _map_refs(v, action) for k, v in value.items()}
    if type(value) in (list, tuple):
        mapped = [_map_refs(v, action) for v in value]
        return mapped if type(value) is list else tuple(mapped)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _map_refs(getattr(value, f.name), action)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


def contains_refs(value: Any) -> bool:
    found: list[bool] = []
    _map_refs(value, lambda ref: found.append(True))
    return bool(found)
