"""Filter discovery: import every module of the filters folder, collect its Filter classes.

Rules (also in the package docs):

* every ``*.py`` directly in the folder is imported in isolation (``_imports``), except
  ``__init__.py``; sub-folders are not scanned, but files can import them (and each other)
  with relative imports;
* a class counts when it is a ``Filter`` subclass *defined* in that module (not merely
  imported), its name does not start with ``_`` and it implements ``forward``;
* a file that fails to import is reported under its name with the line and message, and
  the other files are still scanned;
* two files defining a filter of the same name: both are reported and neither is listed,
  so a spec can never silently pick one.

Discovery is cached per folder on the contents of its files: an unchanged folder answers
in microseconds, and any edit, new or deleted file triggers a fresh import of them all.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soma._pyast import parse as parse_python
from soma.errors import ProjectError
from soma.filter import Filter
from soma.project._imports import (
    IMPORT_LOCK,
    describe_import_error,
    fresh_package,
    package_name,
    relative_path,
)
from soma.space import SearchSpace

__all__ = ["FilterCatalog", "FilterInfo", "discover_filters"]


@dataclass(frozen=True)
class FilterInfo:
    """One discovered filter class and what a reader (or an LLM) needs to use it."""

    name: str
    cls: type[Filter]
    file: str  # relative to the project root, POSIX separators
    doc: str  # first line of the class docstring ("" when it has none)
    params: dict[str, Any]  # name -> SearchSpace.to_dict() or the plain default
    line: int | None = None  # line of the class statement in ``file``
    stateless: bool = False
    inputs: int | None = 1  # inputs forward() takes; None for *inputs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (everything but the class object)."""
        return {
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "doc": self.doc,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "stateless": self.stateless,
            "inputs": self.inputs,
        }


@dataclass(frozen=True)
class FilterCatalog:
    """The filters of a project folder and the files that could not be used."""

    filters: dict[str, FilterInfo] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # relative file -> message
    fingerprint: str = ""  # digest of the folder's file names and contents

    def __contains__(self, name: object) -> bool:
        return name in self.filters

    def __len__(self) -> int:
        return len(self.filters)

    def __getitem__(self, name: str) -> FilterInfo:
        try:
            return self.filters[name]
        except KeyError:
            raise ProjectError(unknown_filter_message(name, self.filters)) from None

    def names(self) -> list[str]:
        return sorted(self.filters)

    def classes(self) -> dict[str, type[Filter]]:
        return {name: info.cls for name, info in self.filters.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "filters": [self.filters[n].to_dict() for n in self.names()],
            "errors": dict(self.errors),
        }


def unknown_filter_message(name: str, known: Any) -> str:
    names = sorted(known)
    # A case-only slip ('Svc' for 'SVC') first: difflib's ratio misses it for short names.
    close = [n for n in names if n.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
    return f"unknown filter {name!r}{hint}; known filters: {shown or 'none'}"


_CACHE: dict[Path, tuple[FilterCatalog, frozenset[str]]] = {}
_CACHE_LOCK = threading.Lock()
#: ``guard(fingerprint) -> {file: reason}``: the files that must not be imported here.
ImportGuard = Callable[[str], Mapping[str, str]]


def discover_filters(
    filters_dir: Path,
    root: Path,
    *,
    refresh: bool = False,
    skip: Mapping[str, str] | None = None,
    guard: ImportGuard | None = None,
    on_file: Callable[[str], Any] | None = None,
) -> FilterCatalog:
    """Discover the filters in ``filters_dir`` (reported paths relative to ``root``).

    ``skip`` maps files (as reported: ``filters/x.py``) that must not be imported to the
    reason reported for them; ``guard(fingerprint)`` gives more such files once the folder
    changed (the tool layer imports the folder in a worker process first, so a file whose
    import hangs or ends the process is never imported here). ``on_file(rel)`` is called
    before each file is imported.
    """
    if not filters_dir.is_dir():
        raise ProjectError(f"filters folder {relative_path(filters_dir, root)!r} does not exist")
    files = sorted(p for p in filters_dir.glob("*.py") if p.name != "__init__.py")
    # A link that leads out of the folder is never imported: the folder is the boundary that
    # read_filter_source and write_filter_source keep, so discovery keeps it too.
    outside = [p for p in files if not _inside(p, filters_dir)]
    sources = {p: _read(p) for p in files if p not in outside}
    for path in outside:
        sources[path] = _OUTSIDE
    digest = hashlib.sha256()
    for path, text in sources.items():
        digest.update(f"{path.name}\0{len(text)}\0".encode() + text.encode("utf-8", "replace"))
    fingerprint = digest.hexdigest()
    key = filters_dir.resolve()
    skipped = dict(skip or {})

    def cached() -> FilterCatalog | None:
        with _CACHE_LOCK:
            entry = _CACHE.get(key)
        if entry is None or refresh or entry[0].fingerprint != fingerprint:
            return None
        # A guarded folder is as good as the guard's last answer; explicit skips must match.
        if guard is None and entry[1] != frozenset(skipped):
            return None
        return entry[0]

    catalog = cached()
    if catalog is not None:
        return catalog
    if guard is not None:
        skipped.update(guard(fingerprint))
    with IMPORT_LOCK:
        catalog = cached()  # another thread may have imported this very state meanwhile
        if catalog is not None:
            return catalog
        catalog = _import_all(filters_dir, root, sources, fingerprint, skipped, on_file)
        with _CACHE_LOCK:
            _CACHE[key] = (catalog, frozenset(skipped))
    return catalog


_OUTSIDE = "\0outside"


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a link loop
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"\0unreadable: {exc}"


def _import_all(
    filters_dir: Path,
    root: Path,
    sources: dict[Path, str],
    fingerprint: str,
    skip: Mapping[str, str],
    on_file: Callable[[str], Any] | None,
) -> FilterCatalog:
    package = package_name("filters", filters_dir)
    fresh_package(package, filters_dir)
    errors: dict[str, list[str]] = {}
    found: dict[str, list[FilterInfo]] = {}
    for path, text in sources.items():
        rel = relative_path(path, root)
        if text == _OUTSIDE:
            rel = f"{relative_path(path.parent, root)}/{path.name}"  # the link, not its target
            errors.setdefault(rel, []).append(
                f"{rel}: a link to a file outside the filters folder; not imported (copy the "
                "file into the folder instead)"
            )
            continue
        if not path.stem.isidentifier():
            errors.setdefault(rel, []).append(
                f"{rel}: {path.stem!r} is not a valid module name; rename the file to a "
                "Python identifier (letters, digits, underscores)"
            )
            continue
        if rel in skip:
            errors.setdefault(rel, []).append(skip[rel])
            continue
        module_name = f"{package}.{path.stem}"
        if on_file is not None:
            on_file(rel)
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:
            errors.setdefault(rel, []).append(describe_import_error(exc, path, root))
            continue
        lines = _class_lines(text)
        for obj in list(vars(module).values()):
            if _is_own_filter(obj, module_name):
                found.setdefault(obj.__name__, []).append(_info(obj, rel, lines))
    filters: dict[str, FilterInfo] = {}
    for name, infos in found.items():
        if len(infos) == 1:
            filters[name] = infos[0]
            continue
        where = " and ".join(info.file for info in infos)
        for info in infos:
            errors.setdefault(info.file, []).append(
                f"{info.file}: filter {name!r} is defined in {where}; rename one of them"
            )
    return FilterCatalog(
        filters=dict(sorted(filters.items())),
        errors={rel: "\n".join(msgs) for rel, msgs in sorted(errors.items())},
        fingerprint=fingerprint,
    )


def _is_own_filter(obj: Any, module_name: str) -> bool:
    return (
        inspect.isclass(obj)
        and issubclass(obj, Filter)
        and obj is not Filter
        and obj.__module__ == module_name
        and not obj.__name__.startswith("_")
        and obj.forward is not Filter.forward
        and not inspect.isabstract(obj)
    )


def _info(cls: type[Filter], rel: str, lines: dict[str, int]) -> FilterInfo:
    own_doc = cls.__dict__.get("__doc__")  # inspect.getdoc would inherit Filter's doc
    doc = inspect.cleandoc(own_doc).splitlines()[0].strip() if own_doc else ""
    params = {
        name: decl.to_dict() if isinstance(decl, SearchSpace) else decl
        for name, decl in cls.param_declarations().items()
    }
    return FilterInfo(
        name=cls.__name__,
        cls=cls,
        file=rel,
        doc=doc,
        params=params,
        line=lines.get(cls.__name__),
        stateless=cls.is_stateless(),
        inputs=cls.input_arity(),
    )


def _class_lines(text: str) -> dict[str, int]:
    try:
        tree = parse_python(text)
    except (SyntaxError, ValueError):
        return {}
    return {node.name: node.lineno for node in tree.body if isinstance(node, ast.ClassDef)}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return repr(value)
