"""``soma cache stats|clear``: inspect or empty a project's result cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from soma.cli import app
from soma.cli._common import ProjectDir, fail, state_paths

cache_app = typer.Typer(
    name="cache", help="Inspect or clear the result cache.", no_args_is_help=True
)
app.add_typer(cache_app)

CacheDir = Annotated[
    Path | None, typer.Option("--cache-dir", help="Cache folder (default PROJECT/.soma/cache).")
]


def _folder(project: Path, cache_dir: Path | None) -> Path:
    folder = cache_dir if cache_dir is not None else state_paths(project).cache_dir
    if folder.exists() and not folder.is_dir():
        raise fail(f"--cache-dir: expected a folder, got the file {folder}")
    return folder


@cache_app.command("stats")
def stats(
    project: ProjectDir = Path("."),
    cache_dir: CacheDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How many entries the on-disk cache holds and how much space they take."""
    from rich.console import Console
    from rich.table import Table

    from soma.cache import Cache

    folder = _folder(project, cache_dir)
    if not folder.exists():
        entries, size = 0, 0
    else:
        found = Cache(folder, memory_items=0).stats()
        entries, size = found.disk_entries, found.disk_bytes
    if as_json:
        typer.echo(json.dumps({"path": str(folder), "entries": entries, "bytes": size}))
        return
    table = Table(title="soma cache", title_justify="left", show_header=False)
    table.add_row("path", str(folder) + ("" if folder.exists() else " (not created yet)"))
    table.add_row("entries", str(entries))
    table.add_row("size", _human(size))
    Console().print(table)


@cache_app.command("clear")
def clear(
    project: ProjectDir = Path("."),
    cache_dir: CacheDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete every cached state and output."""
    from rich.console import Console

    from soma.cache import Cache

    folder = _folder(project, cache_dir)
    if not folder.exists():
        Console().print(f"nothing to clear: {folder} does not exist")
        return
    cache = Cache(folder, memory_items=0)
    before = cache.stats()
    if (
        not yes
        and before.disk_entries
        and not typer.confirm(
            f"Delete {before.disk_entries} entries ({_human(before.disk_bytes)}) in {folder}?"
        )
    ):
        raise typer.Exit(1)
    cache.clear()
    Console().print(
        f"cleared {before.disk_entries} entries ({_human(before.disk_bytes)}) from {folder}"
    )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover
