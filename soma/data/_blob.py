"""Stores of whole objects (a folder, an S3 prefix): the shared logic over byte I/O.

Each object is two blobs: ``<key>.data`` (the payload, see ``soma.data._codec``) and
``<key>.meta.json`` (its ``StoreMeta``). The payload is written first and the metadata
last, so a reader that finds the metadata finds a complete payload.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from soma.data import _codec
from soma.data._base import DataStore, check_key, check_rows
from soma.data._errors import StoreCorruptError, StoreError
from soma.data._meta import StoreMeta
from soma.errors import ValidationError

if TYPE_CHECKING:
    from soma.data.ref import DataRef

__all__ = ["BlobStore"]

META_SUFFIX = ".meta.json"
DATA_SUFFIX = ".data"
_MISSING: Any = object()


class BlobStore(DataStore):
    """Objects as payload + metadata blobs. Subclasses supply the byte operations."""

    # -- byte operations (paths are relative to the store's root) ----------------------

    @abstractmethod
    def _read(self, path: str, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a blob (all when None); StoreError subclasses on failure."""

    @abstractmethod
    def _write(self, path: str, key: str, data: bytes) -> None: ...

    def _write_payload(self, path: str, key: str, data: bytes, sha256_hex: str) -> None:
        """Write a payload whose SHA-256 is known (S3 sends it as the upload's checksum)."""
        self._write(path, key, data)

    @abstractmethod
    def _exists(self, path: str, key: str) -> bool: ...

    @abstractmethod
    def _delete(self, path: str, key: str) -> None: ...

    @abstractmethod
    def _list(self, prefix: str) -> list[str]:
        """Relative paths of the blobs whose path starts with ``prefix``."""

    # -- the store interface ------------------------------------------------------------

    def put(self, value: Any, key: str | None = None) -> DataRef:
        from soma.data.ref import DataRef

        encoded = _codec.encode(value)
        # Hashed before the upload (on two threads when large): the SHA-256 is the content
        # hash and, on S3, the upload's own checksum, so the bytes are hashed once.
        meta = encoded.meta(check_key(key) if key is not None else "")
        if key is None:
            key = meta.content_hash  # content-addressed: same bytes, same key
            meta = meta.model_copy(update={"key": key})
        self.put_encoded(key, encoded.payload, meta)
        return DataRef.from_meta(self, meta)

    def put_encoded(self, key: str, payload: bytes, meta: StoreMeta) -> None:
        """Write an already encoded payload and its metadata (used to copy between stores)."""
        check_key(key)
        self._write_payload(key + DATA_SUFFIX, key, payload, meta.content_hash)
        self._write(key + META_SUFFIX, key, meta.model_dump_json().encode())

    def get_encoded(self, key: str) -> tuple[bytes, StoreMeta]:
        """The verified payload and its metadata."""
        raw_meta, payload = self._read_pair(key + META_SUFFIX, key + DATA_SUFFIX, key)
        meta = self._parse_meta(key, raw_meta)
        if self._damaged(payload, meta) is not None:
            # Read together, the pair may straddle a concurrent rewrite: read again in order.
            meta = self.meta(key)
            payload = self._read(key + DATA_SUFFIX, key)
            bad = self._damaged(payload, meta)
            if bad is not None:
                raise StoreCorruptError(
                    repr(self), key, f"payload does not match its checksum ({bad})"
                )
        return payload, meta

    @staticmethod
    def _damaged(payload: bytes, meta: StoreMeta) -> str | None:
        if len(payload) != meta.nbytes:
            return f"{len(payload)} bytes read, {meta.nbytes} stored"
        block = _codec.verify_blocks(payload, 0, meta.blocks)
        if block is not None or len(meta.blocks) != -(-len(payload) // _codec.BLOCK_SIZE):
            return f"block {block}"
        return None

    def _read_pair(self, first: str, second: str, key: str) -> tuple[bytes, bytes]:
        """Two whole blobs (remote stores fetch them concurrently)."""
        return self._read(first, key), self._read(second, key)

    def get(self, key: str) -> Any:
        return self._get_checked(check_key(key), None)

    def _get_checked(self, key: str, content_hash: str | None) -> Any:
        """Fetch, verify and decode. A large array is decoded while a helper thread checks
        its CRCs; a damaged read goes the careful way (get_encoded reads again in order)."""
        raw_meta, payload = self._read_pair(key + META_SUFFIX, key + DATA_SUFFIX, key)
        meta = self._parse_meta(key, raw_meta)
        value: Any = _MISSING
        if len(payload) >= _codec.PARALLEL_BYTES and meta.format == "npy":
            check = _codec.helper_pool().submit(self._damaged, payload, meta)
            try:
                value = self._decode(key, payload, meta)
            except StoreCorruptError:
                value = _MISSING
            if check.result() is not None:
                value = _MISSING
        elif self._damaged(payload, meta) is None:
            value = self._decode(key, payload, meta)
        if value is _MISSING:
            payload, meta = self.get_encoded(key)  # StoreCorruptError if damaged again
            value = self._decode(key, payload, meta)
        if content_hash is not None and meta.content_hash != content_hash:
            raise StoreError(
                repr(self),
                key,
                f"the object changed since the reference was taken (sha256 "
                f"{meta.content_hash[:12]}, the reference has {content_hash[:12]})",
            )
        return value

    def resolve(self, ref: DataRef) -> Any:
        if ref.count is not None:
            return super().resolve(ref)
        return self._get_checked(check_key(ref.key), ref.content_hash)

    def _decode(self, key: str, payload: bytes, meta: StoreMeta) -> Any:
        try:
            return _codec.decode(payload, meta)
        except Exception as exc:
            raise StoreCorruptError(repr(self), key, f"cannot decode: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._exists(check_key(key) + META_SUFFIX, key)

    def remove(self, key: str) -> None:
        check_key(key)
        if not self.exists(key):
            raise self._missing(key)
        self._delete(key + META_SUFFIX, key)  # metadata first: the object is gone at once
        self._delete(key + DATA_SUFFIX, key)

    def meta(self, key: str) -> StoreMeta:
        return self._parse_meta(key, self._read(check_key(key) + META_SUFFIX, key))

    def _parse_meta(self, key: str, raw: bytes) -> StoreMeta:
        try:
            return StoreMeta.model_validate_json(raw)
        except ValueError as exc:
            raise StoreCorruptError(repr(self), key, f"unreadable metadata: {exc}") from exc

    def get_rows(self, key: str, start: int, n: int) -> Any:
        start, n = check_rows(start, n)
        meta = self.meta(check_key(key))
        if meta.rows is None:
            raise ValidationError("key", f"{key!r} holds a {meta.kind} without rows")
        n = max(0, min(n, meta.rows - start))
        if meta.format != "npy":
            return self.get(key)[start : start + n]  # JSON / pickle / bytes: whole, then slice
        if n == 0:
            return _codec.rows_from_bytes(b"", meta, 0)
        lo, hi = _codec.array_rows_range(meta, start, n)
        block = _codec.BLOCK_SIZE
        first, last = lo // block, (hi - 1) // block
        data = self._read(
            key + DATA_SUFFIX, key, first * block, min((last + 1) * block, meta.nbytes)
        )
        bad = _codec.verify_blocks(data, first, meta.blocks)
        if bad is not None:
            raise StoreCorruptError(repr(self), key, f"block {bad} does not match its checksum")
        offset = lo - first * block
        return _codec.rows_from_bytes(data[offset : offset + (hi - lo)], meta, n)

    def append(self, key: str, rows: Any) -> StoreMeta:
        """Rewrites the whole object (an npy file cannot grow in place); use a ZarrStore
        for arrays that grow often."""
        check_key(key)
        rows = _check_append_rows(rows)
        if self.exists(key):
            current = self.get(key)
            _check_compatible(key, current, rows)
            rows = np.concatenate([current, rows.astype(current.dtype, copy=False)])
        self.put(rows, key)
        return self.meta(key)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(
            path[: -len(META_SUFFIX)] for path in self._list(prefix) if path.endswith(META_SUFFIX)
        )


def _check_append_rows(rows: Any) -> np.ndarray:
    if type(rows) is not np.ndarray or rows.dtype.hasobject or rows.ndim == 0:
        raise ValidationError(
            "rows", f"expected a numpy array with at least one axis, got {type(rows).__name__}"
        )
    return rows


def _check_compatible(key: str, current: Any, rows: np.ndarray) -> None:
    if type(current) is not np.ndarray:
        raise ValidationError("key", f"{key!r} holds a {type(current).__name__}, not an array")
    if current.shape[1:] != rows.shape[1:]:
        raise ValidationError(
            "rows", f"expected rows of shape {current.shape[1:]} for {key!r}, got {rows.shape[1:]}"
        )
    if not np.can_cast(rows.dtype, current.dtype, casting="same_kind"):
        raise ValidationError(
            "rows", f"expected dtype {current.dtype} for {key!r}, got {rows.dtype}"
        )
