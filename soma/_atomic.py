"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(target: Path, data: bytes, *, suffix: str = ".tmp") -> None:
    """Write ``data`` to ``target`` through a hidden temp file in the same folder.

    The temp file is named ``.<target name>.<random><suffix>``, so a folder scan can tell
    a leftover of a killed write by its suffix.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
