"""The filter tools: list_filters, read_filter_source, write_filter_source."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any
from urllib.parse import quote

from soma._pyast import parse
from soma.errors import ProjectError
from soma.experiments import jsonable_value
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError
from soma_tools._models_filters import (
    FilterEntry,
    FilterParam,
    ListFiltersInput,
    ListFiltersOutput,
    ReadFilterSourceInput,
    ReadFilterSourceOutput,
    WriteFilterSourceInput,
    WriteFilterSourceOutput,
)
from soma_tools._safe_write import (
    backup_file,
    check_filter_path,
    check_python_source,
    unified_diff,
    write_atomically,
)

__all__ = [
    "filter_entries",
    "filter_source_uri",
    "list_filters",
    "read_filter_source",
    "write_filter_source",
]

#: Filters shown by list_filters before the list is summarised.
LIST_LIMIT = 40
#: Characters of source returned by read_filter_source before it is cut.
SOURCE_LIMIT = 60_000
FILTERS_RESOURCE = "soma://filters"


def filter_source_uri(rel: str) -> str:
    """``soma://filters/<file>``: the whole source of a file of the filters folder."""
    return f"{FILTERS_RESOURCE}/{quote(rel, safe='')}"


def filter_entries(ctx: ToolContext, name_contains: str | None = None) -> list[FilterEntry]:
    """Every filter of the catalog as a FilterEntry (optionally filtered by name)."""
    catalog = ctx.catalog()
    needle = (name_contains or "").lower()
    entries = []
    for info in catalog.filters.values():
        if needle and needle not in info.name.lower():
            continue
        params = [_param(name, value) for name, value in info.params.items()]
        entries.append(FilterEntry(name=info.name, file=info.file, doc=info.doc, params=params))
    return entries


def _param(name: str, value: Any) -> FilterParam:
    # Discovery gives a SearchSpace as its to_dict() (a dict with "type") or the plain default.
    if isinstance(value, dict) and value.get("type") in ("float", "int", "choice"):
        return FilterParam(name=name, default=value.get("default"), space=value)
    return FilterParam(name=name, default=jsonable_value(value))


def list_filters(ctx: ToolContext, inp: ListFiltersInput) -> ListFiltersOutput:
    """List the project's filters: name, file, parameters with search spaces, first doc line."""
    entries = filter_entries(ctx, inp.name_contains)
    errors = dict(ctx.catalog().errors)
    shown = entries[:LIST_LIMIT]
    return ListFiltersOutput(
        filters=shown,
        total=len(entries),
        errors=errors,
        resource_uri=FILTERS_RESOURCE if len(shown) < len(entries) else None,
    )


def in_filters_folder(ctx: ToolContext, raw: str | None) -> str:
    """``raw`` relative to the filters folder. list_filters names files from the project root
    ('filters/models.py'); the read and write tools take that form as well as 'models.py'
    (unless the filters folder has a subfolder of that name, where the path means it)."""
    raw = raw or ""
    filters_dir = ctx.project.filters_dir
    try:
        prefix = filters_dir.resolve().relative_to(ctx.root.resolve()).as_posix()
    except ValueError:  # a filters folder outside the project: list_filters' paths differ
        return raw
    head = prefix + "/"
    shadowed = (filters_dir / prefix.split("/")[0]).is_dir()
    if prefix not in ("", ".") and raw.startswith(head) and not shadowed:
        return raw[len(head) :]
    return raw


def read_filter_source(ctx: ToolContext, inp: ReadFilterSourceInput) -> ReadFilterSourceOutput:
    """The source of a filter class's file (by class name) or of a file in the filters folder."""
    filters_dir = ctx.project.filters_dir
    start = end = None
    if inp.name is not None:
        catalog = ctx.catalog()
        try:
            info = catalog[inp.name]
        except ProjectError as exc:
            raise ToolError(str(exc), field="name") from None
        path = (ctx.root / info.file).resolve()
        target = check_filter_path(filters_dir, path.relative_to(filters_dir.resolve()).as_posix())
    else:
        target = check_filter_path(filters_dir, in_filters_folder(ctx, inp.file), field="file")
        if not target.path.is_file():
            known = ", ".join(sorted(p.name for p in filters_dir.glob("*.py"))) or "none"
            raise ToolError(
                f"no file {inp.file!r} in the filters folder (files: {known})", field="file"
            )
    source = target.path.read_text(encoding="utf-8", errors="replace")
    if inp.name is not None:
        start, end = _class_span(source, inp.name)
    truncated = len(source) > SOURCE_LIMIT
    return ReadFilterSourceOutput(
        file=target.rel,
        source=source[:SOURCE_LIMIT] if truncated else source,
        filter=inp.name,
        start_line=start,
        end_line=end,
        total_lines=source.count("\n") + (0 if source.endswith("\n") else 1),
        truncated=truncated,
        resource_uri=filter_source_uri(target.rel) if truncated else None,
    )


def _class_span(source: str, name: str) -> tuple[int | None, int | None]:
    try:
        tree = parse(source)  # under the parser lock: tool calls run in worker threads
    except (SyntaxError, ValueError):
        return None, None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return first, node.end_lineno
    return None, None


def write_filter_source(ctx: ToolContext, inp: WriteFilterSourceInput) -> WriteFilterSourceOutput:
    """Create or replace a module in the filters folder, safely; report whether filters import."""
    project = ctx.project
    target = check_filter_path(project.filters_dir, in_filters_folder(ctx, inp.path))
    check_python_source(inp.content, target.rel)
    with ctx.write_lock:
        existed = target.path.exists()
        old = target.path.read_text(encoding="utf-8", errors="replace") if existed else ""
        backup: Path | None = None
        if existed:
            backup = backup_file(target, project.state_dir / "backups" / "filters")
        write_atomically(target.path, inp.content)
        catalog = ctx.catalog(refresh=True)
    diff, cut = unified_diff(old, inp.content, target.rel)
    in_file = sorted(
        n for n, info in catalog.filters.items() if (ctx.root / info.file).resolve() == target.path
    )
    return WriteFilterSourceOutput(
        path=target.rel,
        created=not existed,
        backup=backup.relative_to(ctx.root).as_posix() if backup else None,
        diff=diff,
        diff_truncated=cut,
        filters_import=not catalog.errors,
        filters_in_file=in_file,
        errors=dict(catalog.errors),
        n_filters=len(catalog.filters),
    )
