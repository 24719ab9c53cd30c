"""What every ``soma`` command shares: the ``--project`` and ``--json`` options, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "AsJson",
    "ProjectDir",
    "check_embedder",
    "console",
    "error_text",
    "fail",
    "state_paths",
]

#: Output that is not a terminal (a log, CI, a pipe) gets this width: lines are never cut at
#: rich's default 80 columns, so a message stays one line and a printed path can be copied.
PIPE_WIDTH = 4096

ProjectDir = Annotated[
    Path,
    typer.Option("--project", "-p", help="Project folder (soma.toml; state under .soma/)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def console(*, stderr: bool = False) -> Console:
    """A rich Console for command output: text is soft-wrapped (the terminal wraps it, rich
    inserts no newlines), and when the output is not a terminal nothing is cut to a width
    (``COLUMNS`` still wins where it is set)."""
    from rich.console import Console

    out = Console(stderr=stderr, soft_wrap=True)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


def error_text(exc: BaseException) -> str:
    """An error's message in command-line terms: an unknown research line names the lines
    there are and the commands that make one, not the Python call."""
    from soma.knowledge._writes import UnknownLineError

    if isinstance(exc, UnknownLineError):
        known = ", ".join(repr(n) for n in sorted(exc.known)[:20]) or "none yet"
        return (
            f"unknown research line {exc.line!r} (known: {known}); a line is created by the "
            "first experiment recorded into it, e.g. soma study run SPEC --line NAME"
        )
    return str(exc)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; ``raise fail(...)`` exits with status 1."""
    from rich.markup import escape

    # Escaped: messages quote TOML sections such as "[paths] kb", which rich would eat.
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(1)


def state_paths(project: Path):
    """The project's KB / cache / Optuna paths, honouring ``soma.toml``; errors exit 1."""
    from soma.errors import ProjectError
    from soma.project import project_paths

    try:
        return project_paths(project)
    except ProjectError as exc:
        raise fail(str(exc)) from None


def check_embedder(embedder: str) -> str:
    """``--embedder``: default / minilm (all-MiniLM-L6-v2, the same model) or hashing."""
    if embedder not in ("default", "minilm", "hashing"):
        raise fail(f"--embedder: expected default, minilm or hashing, got {embedder!r}")
    return embedder
