"""Import a project's Python files in isolation from each other and from ``sys.path``.

Every folder Soma imports from becomes a synthetic package named after a hash of its
absolute path (``_soma_filters_1a2b3c4d5e``), so two projects with a ``filters/models.py``
each, or a project and the library itself, never collide, and the names are the same in
every process that opens the same folder. Files in one folder can import each other with
relative imports (``from .common import Base``); top-level ``import filters.x`` is not
supported because ``filters`` would mean a different folder in each project.

Modules are compiled from source on every (re)import: no ``__pycache__`` appears in the
user's folders, and a file rewritten twice within the same second (as an agent does) is
never served from stale bytecode.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import traceback
import types
from pathlib import Path
from typing import Any

__all__ = [
    "describe_import_error",
    "fresh_package",
    "import_file",
    "package_name",
    "relative_path",
]

#: Serialises (re)imports: purging and refilling sys.modules must not interleave.
IMPORT_LOCK = threading.RLock()
_FOLDERS: dict[str, Path] = {}


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    """A source loader that neither reads nor writes bytecode caches."""

    def path_stats(self, path: str) -> Any:
        # SourceLoader.get_code skips the .pyc (and never writes one) when stats fail.
        raise OSError("bytecode cache disabled for project files")


class _ProjectFinder(importlib.abc.MetaPathFinder):
    """Finds ``<synthetic package>.<stem>`` as ``<folder>/<stem>.py``."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        parent, _, stem = fullname.rpartition(".")
        folder = _FOLDERS.get(parent)
        if folder is None:
            return None
        file = folder / f"{stem}.py"
        if not file.is_file():
            return None  # a sub-folder: the regular path finder handles packages
        loader = _FreshSourceLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_FINDER = _ProjectFinder()


def package_name(kind: str, folder: Path) -> str:
    """The synthetic package name for ``folder`` (stable across processes)."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    return f"_soma_{kind}_{digest}"


def fresh_package(name: str, folder: Path) -> types.ModuleType:
    """(Re)create package ``name`` over ``folder``, forgetting modules imported under it.

    Classes from the previous import stay valid for whoever holds them; new imports see
    the files as they are now. A ``__init__.py`` in ``folder`` is not executed.
    """
    with IMPORT_LOCK:
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        _FOLDERS[name] = folder
        package = types.ModuleType(name, f"Soma project files in {folder}")
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        package.__spec__ = spec
        package.__path__ = [str(folder)]
        package.__package__ = name
        sys.modules[name] = package
        importlib.invalidate_caches()  # files created since the last import must be seen
        return package


def import_file(path: Path, *, kind: str = "files") -> types.ModuleType:
    """Import ``path`` afresh, as ``<package of its folder>.<stem>``."""
    with IMPORT_LOCK:
        package = package_name(kind, path.parent)
        fresh_package(package, path.parent)
        return importlib.import_module(f"{package}.{path.stem}")


def describe_import_error(exc: BaseException, file: Path, root: Path) -> str:
    """``"filters/bad.py:3: SyntaxError: invalid syntax"``: where in the project it broke."""
    if isinstance(exc, SyntaxError):
        where = (
            relative_path(Path(exc.filename), root) if exc.filename else relative_path(file, root)
        )
        return f"{where}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _inside(Path(f.filename), root)]
    where = (
        f"{relative_path(Path(frames[-1].filename), root)}:{frames[-1].lineno}"
        if frames
        else relative_path(file, root)
    )
    return f"{where}: {type(exc).__name__}: {exc}"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with POSIX separators (as is when it lies outside)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)
