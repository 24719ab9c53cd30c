"""``ZarrStore``: arrays as Zarr v3 arrays (chunked by rows, zstd + CRC32C), on a local
path or on S3 through fsspec.

``get_rows`` reads only the chunks its rows lie in; ``append`` grows the array in place
(writing only the new and the last partial chunk). Every chunk carries a CRC32C, so a
corrupted chunk is reported, not decoded into wrong numbers. A chunk that is missing
altogether reads as the fill value (zero) — Zarr's rule for never-written chunks.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from soma.data._base import DataStore, check_key, check_rows
from soma.data._errors import StoreCorruptError, StoreError, StoreKeyError, require
from soma.data._meta import StoreMeta
from soma.errors import ValidationError

if TYPE_CHECKING:
    from soma.data.ref import DataRef

__all__ = ["ZarrStore"]

_HASH_ATTR = "soma_content_hash"


class ZarrStore(DataStore):
    """Numpy arrays (no object dtype) under one Zarr v3 hierarchy.

    ``root``: a local path or ``s3://bucket/prefix``; for S3, ``s3`` holds the keyword
    arguments of :func:`soma.data.s3.s3_options` (key, secret, token, endpoint_url, ...).
    Chunks hold about ``chunk_bytes`` bytes of whole rows.
    """

    def __init__(
        self,
        root: str,
        *,
        chunk_bytes: int = 1 << 20,
        level: int = 3,
        **s3: Any,
    ) -> None:
        zarr = require("zarr", "ZarrStore", "zarr")
        if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
            raise ValidationError("chunk_bytes", f"expected an int >= 1, got {chunk_bytes!r}")
        self.chunk_bytes = chunk_bytes
        self.level = level
        self._secrets: tuple[str, ...] = ()
        self._public: dict[str, str] = {}
        self.endpoint_url: str | None = None
        if root.startswith("s3://"):
            require("s3fs", "ZarrStore on S3", "s3")
            from soma.data.s3 import public_s3_options, s3_options

            options = s3_options(**s3)
            options.pop("skip_instance_cache")  # FsspecStore makes its own async instance
            self._secrets = tuple(
                s for s in (options["key"], options["secret"], options["token"]) if s
            )
            self.endpoint_url = options["endpoint_url"]
            self._public = public_s3_options(options)
            self.zstore = zarr.storage.FsspecStore.from_url(root, storage_options=options)
            self.url = "zarr+" + root.rstrip("/")
        else:
            if s3:
                raise ValidationError("s3", f"S3 options {sorted(s3)} need an s3:// root")
            from pathlib import Path

            path = Path(root).expanduser().resolve()
            path.mkdir(parents=True, exist_ok=True)
            self.zstore = zarr.storage.LocalStore(str(path))
            self.url = f"zarr://{path}"
        self._arrays: dict[str, Any] = {}
        self._lock = threading.Lock()
        try:
            zarr.open_group(self.zstore, mode="a", zarr_format=3)  # checks access now, too
        except Exception as exc:
            raise self._error(exc, None) from None

    def __repr__(self) -> str:
        where = f", endpoint={self.endpoint_url}" if self.endpoint_url else ""
        return f"ZarrStore({self.url}{where})"

    def public_options(self) -> dict[str, str]:
        return dict(self._public)

    # -- errors -----------------------------------------------------------------------

    def _error(self, exc: Exception, key: str | None) -> StoreError:
        import zarr

        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, zarr.errors.NodeNotFoundError | FileNotFoundError | KeyError):
            return StoreKeyError(repr(self), key, "no such array")
        from soma.data.s3 import translate_s3_error

        return translate_s3_error(repr(self), exc, key, self._secrets)

    def _open(self, key: str, *, fresh: bool = False) -> Any:
        import zarr

        check_key(key)
        with self._lock:
            array = None if fresh else self._arrays.get(key)
        if array is None:
            try:
                array = zarr.open_array(self.zstore, path=key, mode="r+", zarr_format=3)
            except Exception as exc:
                raise self._error(exc, key) from None
            with self._lock:
                self._arrays[key] = array
        return array

    # -- the store interface ------------------------------------------------------------

    def put(self, value: Any, key: str | None = None) -> DataRef:
        import zarr
        from zarr.codecs import Crc32cCodec, ZstdCodec

        from soma.data.ref import DataRef

        if type(value) is not np.ndarray or value.dtype.hasobject or value.ndim == 0:
            raise ValidationError(
                "value",
                f"a ZarrStore holds numpy arrays with at least one axis, got "
                f"{type(value).__name__}; use a LocalStore or S3Store for other values",
            )
        array = np.ascontiguousarray(value)
        content_hash = _array_hash(array)
        key = check_key(key) if key is not None else content_hash
        row_bytes = max(1, array[:1].nbytes if len(array) else array.dtype.itemsize)
        chunk_rows = max(1, self.chunk_bytes // row_bytes)
        try:
            stored = zarr.create_array(
                self.zstore,
                name=key,
                shape=array.shape,
                dtype=array.dtype,
                chunks=(chunk_rows, *array.shape[1:]),
                compressors=[ZstdCodec(level=self.level), Crc32cCodec()],
                attributes={_HASH_ATTR: content_hash},
                overwrite=True,
            )
            if array.size:
                stored[...] = array
        except Exception as exc:
            raise self._error(exc, key) from None
        with self._lock:
            self._arrays[key] = stored
        meta = self._meta_of(key, stored)
        return DataRef.from_meta(self, meta)

    def get(self, key: str) -> Any:
        array = self._open(key)
        return self._read(array, key, slice(None), 0, array.shape[0])

    def get_rows(self, key: str, start: int, n: int) -> Any:
        start, n = check_rows(start, n)
        array = self._open(key)
        stop = min(start + n, array.shape[0])
        return self._read(array, key, slice(start, max(start, stop)), start, stop)

    def _read(self, array: Any, key: str, rows: slice, start: int, stop: int) -> np.ndarray:
        try:
            return array[rows]
        except ValueError as exc:
            if "checksum" not in str(exc).lower() and "decompress" not in str(exc).lower():
                raise self._error(exc, key) from None
            chunk = array.chunks[0]
            raise StoreCorruptError(
                repr(self),
                key,
                f"a chunk in rows {start}..{stop} (chunks {start // chunk}.."
                f"{max(start, stop - 1) // chunk}) failed its checksum: {exc}",
            ) from None
        except Exception as exc:
            raise self._error(exc, key) from None

    def resolve(self, ref: DataRef) -> Any:
        # Arrays here only grow (append) or are replaced (put, a new hash): the rows a
        # reference was taken with are its first ``rows`` rows.
        if ref.count is None and ref.rows is not None:
            return self.get_rows(ref.key, 0, ref.rows)
        return super().resolve(ref)

    def exists(self, key: str) -> bool:
        try:
            self._open(key, fresh=True)
        except StoreKeyError:
            return False
        return True

    def remove(self, key: str) -> None:
        from zarr.core.sync import sync

        self._open(key, fresh=True)  # StoreKeyError when missing
        with self._lock:
            self._arrays.pop(key, None)
        try:
            sync(self.zstore.delete_dir(key))
        except Exception as exc:
            raise self._error(exc, key) from None

    def meta(self, key: str) -> StoreMeta:
        return self._meta_of(key, self._open(key, fresh=True))

    def _meta_of(self, key: str, array: Any) -> StoreMeta:
        return StoreMeta(
            key=key,
            kind="array",
            format="zarr",
            nbytes=int(array.nbytes),
            content_hash=str(array.attrs.get(_HASH_ATTR, "")),
            rows=int(array.shape[0]),
            shape=tuple(int(s) for s in array.shape),
            dtype=np.dtype(array.dtype).str,
            chunk_rows=int(array.chunks[0]),
        )

    def append(self, key: str, rows: Any) -> StoreMeta:
        if type(rows) is not np.ndarray or rows.dtype.hasobject or rows.ndim == 0:
            raise ValidationError("rows", f"expected a numpy array, got {type(rows).__name__}")
        if not self.exists(key):
            self.put(rows, key)
            return self.meta(key)
        array = self._open(key)
        if tuple(array.shape[1:]) != rows.shape[1:]:
            raise ValidationError(
                "rows",
                f"expected rows of shape {tuple(array.shape[1:])} for {key!r}, "
                f"got {rows.shape[1:]}",
            )
        rows = np.ascontiguousarray(rows, dtype=array.dtype)
        try:
            array.append(rows)
            # The content hash chains: it identifies this exact history of rows without
            # reading the rows already stored.
            previous = str(array.attrs.get(_HASH_ATTR, ""))
            array.attrs[_HASH_ATTR] = hashlib.sha256(
                (previous + _array_hash(rows)).encode()
            ).hexdigest()
        except Exception as exc:
            raise self._error(exc, key) from None
        return self._meta_of(key, array)

    def keys(self, prefix: str = "") -> list[str]:
        import zarr

        try:
            group = zarr.open_group(self.zstore, mode="r", zarr_format=3)
            found = _walk_arrays(group)
        except zarr.errors.NodeNotFoundError:
            return []
        except Exception as exc:
            raise self._error(exc, prefix or "*") from None
        return sorted(k for k in found if k.startswith(prefix))


def _walk_arrays(group: Any, base: str = "") -> list[str]:
    found: list[str] = []
    for name, member in group.members():
        path = f"{base}{name}"
        if hasattr(member, "shape"):
            found.append(path)
        else:
            found.extend(_walk_arrays(member, path + "/"))
    return found


def _array_hash(array: np.ndarray) -> str:
    h = hashlib.sha256(f"{array.dtype.str}{array.shape[1:]}".encode())
    h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()
