"""The local-folder entry store: the disk tier's bytes as files in two-hex-digit shards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from soma._atomic import atomic_write
from soma.cache._base import EntryStore

__all__ = ["FolderEntries"]

_ENTRY_SUFFIXES = ("meta", "npy", "pkl")
_HEX_DIGITS = frozenset("0123456789abcdef")


def is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEX_DIGITS for c in text)


class FolderEntries(EntryStore):
    """``<root>/<name[:2]>/<name>``, each written to a temporary file and renamed in place.

    Only the cache's own files count (``<hex key>.meta|.npy|.pkl`` in shard folders, and
    their write leftovers): a folder that holds other things keeps them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, name: str) -> Path:
        return self.root / name[:2] / name

    def get(self, name: str) -> bytes | None:
        try:
            return self._file(name).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, name: str, data: bytes) -> None:
        target = self._file(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)

    def exists(self, name: str) -> bool:
        return self._file(name).is_file()

    def remove(self, name: str) -> None:
        self._file(name).unlink(missing_ok=True)

    def names(self) -> Iterator[tuple[str, int]]:
        for file in self.files():
            yield file.name, file.stat().st_size

    def files(self, *, leftovers: bool = False) -> list[Path]:
        """The entry files (and, with ``leftovers``, temporary files of unfinished writes)."""
        if not self.root.is_dir():
            return []
        found = []
        for shard in self.root.iterdir():
            if not (shard.is_dir() and is_hex(shard.name) and len(shard.name) == 2):
                continue
            for file in shard.iterdir():
                name = file.name
                temp = name.startswith(".") and name.endswith(".tmp")  # see atomic_write
                stem, _, suffix = name.removeprefix(".").partition(".")
                if not (is_hex(stem) and stem.startswith(shard.name) and file.is_file()):
                    continue
                if (leftovers and temp) or (not temp and suffix in _ENTRY_SUFFIXES):
                    found.append(file)
        return found

    def clear(self) -> None:
        """Delete every entry and write leftover, then the shard folders left empty."""
        shards = set()
        for file in self.files(leftovers=True):
            file.unlink(missing_ok=True)
            shards.add(file.parent)
        for shard in shards:
            with contextlib.suppress(OSError):
                shard.rmdir()  # only when empty
