"""The store interface every data store implements: ``DataStore``."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from soma.data._errors import StoreKeyError
from soma.data._meta import StoreMeta
from soma.errors import ValidationError

if TYPE_CHECKING:
    from soma.data.ref import DataRef

__all__ = ["DataStore", "check_key"]

_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")


def check_key(key: Any) -> str:
    """``key`` if it is a valid store key: path segments of letters, digits, ``_ . -``."""
    if not isinstance(key, str) or not _KEY_RE.match(key) or ".." in key.split("/"):
        raise ValidationError(
            "key",
            f"expected segments of letters, digits, '_', '.', '-' separated by '/', got {key!r}",
        )
    if key.endswith(".meta.json") or key.endswith(".part"):
        raise ValidationError("key", f"{key!r} ends with a suffix the store uses itself")
    return key


class DataStore(ABC):
    """A place values live: a folder, an S3 bucket, a Zarr hierarchy, a cache in front of one.

    ``put`` returns a :class:`~soma.data.DataRef` carrying the content hash taken while
    writing; ``get_rows`` reads only the bytes (or chunks) the rows lie in.
    """

    #: Where the store lives, as a URL ``open_store`` understands (no credentials in it).
    url: str

    @abstractmethod
    def put(self, value: Any, key: str | None = None) -> DataRef:
        """Store ``value`` under ``key`` (None: its content hash) and return a reference."""

    @abstractmethod
    def get(self, key: str) -> Any:
        """The whole value; StoreKeyError when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def remove(self, key: str) -> None:
        """Delete the object; StoreKeyError when there is none."""

    @abstractmethod
    def meta(self, key: str) -> StoreMeta:
        """Kind, rows, shape, dtype, size and content hash, without reading the value."""

    @abstractmethod
    def get_rows(self, key: str, start: int, n: int) -> Any:
        """Rows ``start .. start+n`` (clipped at the end), reading only what they need."""

    @abstractmethod
    def append(self, key: str, rows: Any) -> StoreMeta:
        """Add rows to the end of a stored array (creating it if missing)."""

    @abstractmethod
    def keys(self, prefix: str = "") -> list[str]:
        """Stored keys starting with ``prefix``, sorted."""

    def public_options(self) -> dict[str, str]:
        """What, besides ``url``, another process needs to open this store (an endpoint, a
        region): never credentials, which come from that process's environment."""
        return {}

    def ref(self, key: str) -> DataRef:
        """A reference to an object already in the store (reads its metadata only)."""
        from soma.data.ref import DataRef

        return DataRef.from_meta(self, self.meta(key))

    def resolve(self, ref: DataRef) -> Any:
        """The value ``ref`` points to (only its rows for a slice)."""
        if ref.count is not None:
            return self.get_rows(ref.key, ref.start, ref.count)
        return self.get(ref.key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.exists(key)

    def _missing(self, key: str) -> StoreKeyError:
        return StoreKeyError(repr(self), key, "no such object")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"


def check_rows(start: Any, n: Any) -> tuple[int, int]:
    for field, value in (("start", start), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(field, f"expected an int >= 0, got {value!r}")
    return start, n
