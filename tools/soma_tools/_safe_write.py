"""Writing into the filters folder without ever leaving it.

``check_filter_path`` refuses, before anything touches the disk: absolute paths, ``..``,
hidden parts, backslashes, names not ending in ``.py`` and any path whose resolved location
(following symlinks) lies outside the folder. ``check_python_source`` compiles the content
(parser and compiler errors alike) before anything is written. ``backup_file`` keeps a
numbered copy of the previous content under ``.soma/backups/`` (never overwritten), and
``write_atomically`` replaces the file with a rename, so a reader sees the old file or the
new one, never half of one.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from soma._pyast import compile_source
from soma_tools._errors import ToolError

__all__ = ["SafeTarget", "check_filter_path", "check_python_source", "unified_diff"]

#: Largest filter file accepted (bytes of UTF-8).
MAX_SOURCE_BYTES = 1_000_000
#: Longest path accepted, and longest folder or file name in it (NAME_MAX on Linux and macOS).
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class SafeTarget:
    """A checked destination: ``rel`` inside ``filters_dir``, ``path`` its real location."""

    filters_dir: Path
    rel: str
    path: Path


def check_filter_path(filters_dir: Path, raw: str, *, field: str = "path") -> SafeTarget:
    """The real location of ``raw`` inside ``filters_dir``; ToolError (naming why) otherwise."""
    if not raw or not raw.strip():
        raise ToolError("expected a relative path such as 'my_filters.py', got ''", field=field)
    if "\0" in raw or "\\" in raw:
        raise ToolError(
            f"{raw!r} contains a backslash or NUL; use '/' between folder names", field=field
        )
    if len(raw) > MAX_PATH_CHARS:
        raise ToolError(
            f"the path is {len(raw):,} characters long; at most {MAX_PATH_CHARS} are accepted",
            field=field,
        )
    posix = PurePosixPath(raw)
    longest = max((len(part.encode("utf-8", "replace")) for part in posix.parts), default=0)
    if longest > MAX_NAME_BYTES:
        raise ToolError(
            f"a folder or file name in {raw!r} is {longest} bytes long; at most "
            f"{MAX_NAME_BYTES} are accepted",
            field=field,
        )
    if posix.is_absolute() or Path(raw).is_absolute() or (len(raw) > 1 and raw[1] == ":"):
        raise ToolError(
            f"{raw!r} is absolute; give a path relative to the filters folder "
            f"(e.g. {posix.name!r})",
            field=field,
        )
    parts = posix.parts
    if ".." in parts:
        raise ToolError(
            f"{raw!r} contains '..'; paths must stay inside the filters folder", field=field
        )
    if any(part.startswith(".") or part == "__pycache__" for part in parts):
        raise ToolError(f"{raw!r} has a hidden or cache folder part; not allowed", field=field)
    if posix.suffix != ".py":
        raise ToolError(
            f"{raw!r} is not a .py file; only Python modules can be written", field=field
        )
    base = filters_dir.resolve()
    candidate = base.joinpath(*parts)
    real = candidate.resolve()  # follows every symlink along the way, existing or not
    if not real.is_relative_to(base):
        raise ToolError(
            f"{raw!r} leads outside the filters folder (through a symlink, to {real}); refused",
            field=field,
        )
    if real.suffix != ".py":
        raise ToolError(f"{raw!r} is a link to a non-.py file; refused", field=field)
    if real.exists() and not real.is_file():
        raise ToolError(f"{raw!r} exists and is not a regular file", field=field)
    return SafeTarget(base, real.relative_to(base).as_posix(), real)


def check_python_source(content: str, rel: str, *, field: str = "content") -> None:
    """ToolError with the line and message when ``content`` is not valid Python."""
    size = len(content.encode("utf-8", "replace"))
    if size > MAX_SOURCE_BYTES:
        raise ToolError(f"{size} bytes is over the {MAX_SOURCE_BYTES} byte limit", field=field)
    try:
        # compile, not ast.parse: errors such as 'return' outside a function or a duplicate
        # argument are found by the compiler after parsing, and would only show at import.
        compile_source(content, rel)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip("\n")
        pointer = f"\n    {line}\n    {' ' * max((exc.offset or 1) - 1, 0)}^" if line else ""
        raise ToolError(
            f"syntax error in {rel} at line {exc.lineno}, column {exc.offset}: {exc.msg}"
            f"{pointer}\nNothing was written.",
            field=field,
        ) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # NUL bytes, or nesting too deep for the compiler
        raise ToolError(
            f"{rel} cannot be parsed: {exc}. Nothing was written.", field=field
        ) from None


def backup_file(target: SafeTarget, backups_dir: Path) -> Path:
    """Copy the current content of ``target`` to a new numbered backup; returns its path."""
    folder = backups_dir / PurePosixPath(target.rel).parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = PurePosixPath(target.rel).name
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    version = 1 + sum(1 for _ in folder.glob(f"{stem}.v*"))
    while True:
        dest = folder / f"{stem}.v{version:04d}.{stamp}.bak"
        try:
            with open(dest, "xb") as out:  # "x": never overwrite an earlier backup
                out.write(target.path.read_bytes())
            return dest
        except FileExistsError:
            version += 1


def write_atomically(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unified_diff(old: str, new: str, rel: str, *, max_lines: int = 300) -> tuple[str, bool]:
    """The unified diff ``a/rel`` -> ``b/rel`` (cut after ``max_lines``) and whether it was cut."""
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{rel}" if old else "/dev/null",
            tofile=f"b/{rel}",
        )
    )
    cut = len(lines) > max_lines
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines[:max_lines])
    return text.rstrip("\n"), cut
