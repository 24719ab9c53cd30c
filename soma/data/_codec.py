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
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from soma.data._meta import StoreMeta

__all__ = [
    "BLOCK_SIZE",
    "Encoded",
    "block_hashes",
    "decode",
    "digest",
    "encode",
    "helper_pool",
    "verify_blocks",
]

BLOCK_SIZE = 1 << 20
#: payloads this large are checksummed on two threads (hashlib, zlib and numpy's copies
#: release the GIL, so the second core works while the first hashes)
PARALLEL_BYTES = 4 << 20
_helper: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()


def helper_pool() -> ThreadPoolExecutor:
    """One small process-wide pool for the second half of a large payload's work."""
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="soma-store")
        return _helper


class Encoded:
    """A payload and what is known of it before hashing (kind, rows, shape, ...)."""

    __slots__ = ("fields", "payload", "sha256")

    def __init__(
        self, payload: bytes, fields: dict[str, Any], sha256: Future[str] | None = None
    ) -> None:
        self.payload = payload
        self.fields = fields
        self.sha256 = sha256  # the SHA-256, when a helper thread is taking it already

    def meta(self, key: str) -> StoreMeta:
        """The metadata under ``key``, hashing the payload (SHA-256 and block CRCs)."""
        if self.sha256 is not None:
            blocks = block_hashes(self.payload)  # while the helper finishes the SHA-256
            content_hash = self.sha256.result()
        else:
            content_hash, blocks = digest(self.payload)
        return StoreMeta(
            key=key,
            nbytes=len(self.payload),
            content_hash=content_hash,
            blocks=blocks,
            **self.fields,
        )


def digest(payload: bytes) -> tuple[str, list[str]]:
    """SHA-256 (hex) and the block CRCs of ``payload``; a large one on two threads."""
    if len(payload) < PARALLEL_BYTES:
        return hashlib.sha256(payload).hexdigest(), block_hashes(payload)
    crcs = helper_pool().submit(block_hashes, payload)
    content_hash = hashlib.sha256(payload).hexdigest()
    return content_hash, crcs.result()


def block_hashes(payload: bytes | memoryview) -> list[str]:
    # CRC32 per block: it detects corruption (the job here) at several GB/s; identity is
    # the SHA-256 content hash, taken once at put.
    view = memoryview(payload)
    return [f"{zlib.crc32(view[i : i + BLOCK_SIZE]):08x}" for i in range(0, len(view), BLOCK_SIZE)]


def verify_blocks(data: bytes, first_block: int, expected: list[str]) -> int | None:
    """Index of the first block of ``data`` (starting at block ``first_block``) whose
    checksum differs from ``expected``; None when all match."""
    for offset, crc in enumerate(block_hashes(data)):
        index = first_block + offset
        if index >= len(expected) or crc != expected[index]:
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
    # bytearray). A large array is hashed from its own memory meanwhile: one hashlib call
    # releases the GIL for all of it, while the join holds the GIL for its copy.
    rows = array.reshape(-1).view(np.uint8) if array.nbytes else b""
    head = header.getvalue()
    sha256 = None
    if array.nbytes >= PARALLEL_BYTES:
        sha256 = helper_pool().submit(_sha256_of, head, memoryview(rows))
    payload = b"".join((head, memoryview(rows)))
    fields = {
        "kind": "array",
        "format": "npy",
        "rows": array.shape[0] if array.ndim else None,
        "shape": tuple(array.shape),
        "dtype": array.dtype.str,
        "header_len": header_len,
    }
    return Encoded(payload, fields, sha256)


def _sha256_of(head: bytes, rows: memoryview) -> str:
    sha = hashlib.sha256(head)
    sha.update(rows)
    return sha.hexdigest()


def decode(payload: bytes, meta: StoreMeta) -> Any:
    if meta.format == "npy":
        if meta.header_len is not None and meta.shape is not None and meta.dtype is not None:
            dtype = np.dtype(meta.dtype)
            if dtype.kind not in "VO":  # plain dtypes: the metadata describes them exactly
                return _array_from_payload(payload, meta, dtype)
        return np.load(io.BytesIO(payload), allow_pickle=False)
    if meta.format == "json":
        return json.loads(payload)
    if meta.format == "bytes":
        return payload
    if meta.format == "pkl":
        import cloudpickle

        return cloudpickle.loads(payload)
    raise ValueError(f"unknown payload format {meta.format!r}")


def _array_from_payload(payload: bytes, meta: StoreMeta, dtype: np.dtype) -> np.ndarray:
    # One copy out of the payload into a writable array (np.load on a BytesIO makes two:
    # the read, then the fill). The header was checked by the block CRCs like the rest.
    assert meta.shape is not None and meta.header_len is not None
    count = math.prod(meta.shape)
    if len(payload) != meta.header_len + count * dtype.itemsize:
        raise ValueError(f"{len(payload)} payload bytes do not hold {meta.shape} {dtype}")
    if count == 0:
        return np.empty(meta.shape, dtype=dtype)
    view = np.frombuffer(payload, dtype=dtype, count=count, offset=meta.header_len)
    return view.reshape(meta.shape).copy()


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
