"""Values to bytes and back, with the metadata a store keeps beside them.

Formats: numpy arrays (no object dtype) as ``.npy`` (C order, so row ``i`` lies at a known
byte offset and ``get_rows`` can read a byte range); values that JSON represents exactly
(None, bool, int, finite float, str, lists, dicts with str keys) as JSON; ``bytes`` as
they are; anything else with cloudpickle.

Every payload gets a SHA-256 (the content hash a DataRef carries and the cache keys on)
and a CRC32 per ``BLOCK_SIZE`` bytes, so a read verifies what it fetched (a ranged read
only its blocks) without hashing the whole object again.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zlib
from typing import Any

import numpy as np

from soma.data._meta import StoreMeta

__all__ = ["BLOCK_SIZE", "Encoded", "block_hashes", "decode", "encode", "verify_blocks"]

BLOCK_SIZE = 1 << 20


class Encoded:
    """A payload and what is known of it before hashing (kind, rows, shape, ...)."""

    __slots__ = ("fields", "payload")

    def __init__(self, payload: bytes, fields: dict[str, Any]) -> None:
        self.payload = payload
        self.fields = fields

    def meta(self, key: str) -> StoreMeta:
        """The metadata under ``key``, hashing the payload (SHA-256 and block CRCs)."""
        return StoreMeta(
            key=key,
            nbytes=len(self.payload),
            content_hash=hashlib.sha256(self.payload).hexdigest(),
            blocks=block_hashes(self.payload),
            **self.fields,
        )


def block_hashes(payload: bytes | memoryview) -> list[str]:
    # CRC32 per block: it detects corruption (the job here) at several GB/s; identity is
    # the SHA-256 content hash, taken once at put.
    view = memoryview(payload)
    return [f"{zlib.crc32(view[i : i + BLOCK_SIZE]):08x}" for i in range(0, len(view), BLOCK_SIZE)]


def verify_blocks(data: bytes, first_block: int, expected: list[str]) -> int | None:
    """Index of the first block of ``data`` (starting at block ``first_block``) whose
    checksum differs from ``expected``; None when all match."""
    for offset, digest in enumerate(block_hashes(data)):
        index = first_block + offset
        if index >= len(expected) or digest != expected[index]:
            return index
    return None


def encode(value: Any) -> Encoded:
    if type(value) is np.ndarray and not value.dtype.hasobject:
        return _encode_array(value)
    if isinstance(value, bytes | bytearray | memoryview):
        payload = bytes(value)
        return Encoded(payload, {"kind": "bytes", "format": "bytes", "rows": len(payload)})
    if _json_exact(value):
        payload = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        rows = len(value) if isinstance(value, list) else None
        return Encoded(payload, {"kind": "json", "format": "json", "rows": rows})
    import cloudpickle

    payload = cloudpickle.dumps(value, protocol=5)
    rows = len(value) if isinstance(value, list | tuple) else None
    return Encoded(payload, {"kind": "pickle", "format": "pkl", "rows": rows})


def _encode_array(value: np.ndarray) -> Encoded:
    # np.asarray(order="C"), not ascontiguousarray: that turns a 0-d array into shape (1,).
    array = np.asarray(value, order="C")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    header_len = header.tell()
    # One copy of the data, into immutable bytes (botocore sends bytes much faster than a
    # bytearray).
    rows = array.reshape(-1).view(np.uint8) if array.nbytes else b""
    payload = b"".join((header.getvalue(), memoryview(rows)))
    fields = {
        "kind": "array",
        "format": "npy",
        "rows": array.shape[0] if array.ndim else None,
        "shape": tuple(array.shape),
        "dtype": array.dtype.str,
        "header_len": header_len,
    }
    return Encoded(payload, fields)


def decode(payload: bytes, meta: StoreMeta) -> Any:
    if meta.format == "npy":
        return np.load(io.BytesIO(payload), allow_pickle=False)
    if meta.format == "json":
        return json.loads(payload)
    if meta.format == "bytes":
        return payload
    if meta.format == "pkl":
        import cloudpickle

        return cloudpickle.loads(payload)
    raise ValueError(f"unknown payload format {meta.format!r}")


def array_rows_range(meta: StoreMeta, start: int, n: int) -> tuple[int, int]:
    """Byte range [lo, hi) of rows ``start .. start+n`` in an npy payload."""
    assert meta.shape is not None and meta.dtype is not None and meta.header_len is not None
    row_bytes = np.dtype(meta.dtype).itemsize * math.prod(meta.shape[1:])
    return meta.header_len + start * row_bytes, meta.header_len + (start + n) * row_bytes


def rows_from_bytes(data: bytes, meta: StoreMeta, n: int) -> np.ndarray:
    assert meta.shape is not None and meta.dtype is not None
    return np.frombuffer(data, dtype=np.dtype(meta.dtype)).reshape((n, *meta.shape[1:])).copy()


def _json_exact(value: Any, depth: int = 0) -> bool:
    """True when JSON gives back exactly ``value`` (same types, no tuples, finite floats)."""
    if depth > 64:
        return False
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return True
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(_json_exact(item, depth + 1) for item in value)
    if t is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False
