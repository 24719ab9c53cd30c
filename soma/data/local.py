"""``LocalStore``: objects in a folder, written atomically (temp file + rename)."""

from __future__ import annotations

import os
from pathlib import Path

from soma._atomic import atomic_write
from soma.data._blob import BlobStore
from soma.data._errors import StoreAuthError, StoreError
from soma.errors import ValidationError

__all__ = ["LocalStore"]


class LocalStore(BlobStore):
    """A folder of ``<key>.data`` + ``<key>.meta.json`` pairs.

    >>> import tempfile, numpy as np
    >>> store = LocalStore(tempfile.mkdtemp())
    >>> ref = store.put(np.arange(6.0).reshape(3, 2), "x")
    >>> store.get_rows("x", 1, 1)
    array([[2., 3.]])
    >>> store.meta("x").rows
    3
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise ValidationError("path", f"{self.root} exists and is not a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()

    def _path(self, path: str) -> Path:
        return self.root / path

    def _read(self, path: str, key: str, start: int | None = None, end: int | None = None) -> bytes:
        try:
            with open(self._path(path), "rb") as handle:
                if start is None:
                    return handle.read()
                handle.seek(start)
                return handle.read((end if end is not None else 1 << 62) - start)
        except FileNotFoundError:
            raise self._missing(key) from None
        except PermissionError as exc:
            raise StoreAuthError(repr(self), key, f"permission denied: {exc.filename}") from exc
        except OSError as exc:
            raise StoreError(repr(self), key, f"cannot read: {exc}") from exc

    def _write(self, path: str, key: str, data: bytes) -> None:
        target = self._path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data, suffix=".part")  # ".part": skipped by key listings
        except PermissionError as exc:
            raise StoreAuthError(repr(self), key, f"permission denied: {exc.filename}") from exc
        except OSError as exc:
            raise StoreError(repr(self), key, f"cannot write: {exc}") from exc

    def _exists(self, path: str, key: str) -> bool:
        return self._path(path).is_file()

    def _delete(self, path: str, key: str) -> None:
        self._path(path).unlink(missing_ok=True)

    def _list(self, prefix: str) -> list[str]:
        found = []
        for file in self.root.rglob("*"):
            rel = file.relative_to(self.root).as_posix()
            if rel.startswith(prefix) and file.is_file() and not file.name.startswith("."):
                found.append(rel)
        return found
