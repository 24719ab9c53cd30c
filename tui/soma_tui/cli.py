"""``soma tui``: the terminal dashboard (the Textual app lives in ``soma_tui``).

The TUI face owns this command; ``soma`` finds it through the ``soma.commands`` entry point
(``tui = "soma_tui.cli:register"``), so the core CLI never imports the TUI.
"""

from __future__ import annotations

from pathlib import Path

import typer

from soma.cli._common import check_embedder, fail

_PROJECT_OPTION = typer.Option(
    Path("."), "--project", "-p", help="Project folder (holds soma.toml)."
)
_KB_OPTION = typer.Option(
    None, "--kb", help="Open this knowledge-base file instead of the project's (read-mostly)."
)
_EMBEDDER_OPTION = typer.Option(
    "default",
    "--embedder",
    help="Search embedder, also used by runs started here: default (all-MiniLM-L6-v2) or "
    "hashing (fast, lexical).",
)


def tui(
    project_dir: Path = _PROJECT_OPTION,
    kb: Path | None = _KB_OPTION,
    embedder: str = _EMBEDDER_OPTION,
) -> None:
    """Watch research lines and experiments, and steer agent runs (pause, approve, inject…)."""
    from soma.errors import ProjectError

    check_embedder(embedder)
    project_root: Path | None = None
    if kb is None:
        from soma.project import load_project

        try:
            project = load_project(project_dir)
        except ProjectError as exc:
            raise fail(str(exc)) from None
        kb_path, project_root = Path(project.kb_path), Path(project.root)
    else:
        if kb.exists() and not kb.is_file():
            raise fail(f"--kb: expected a file, got {kb}")
        kb_path = kb
    from soma_tui import run

    run(kb_path, project_root=project_root, embedder=embedder)


def register(app: typer.Typer) -> None:
    """Add ``soma tui`` to ``app`` (the ``soma.commands`` entry point)."""
    app.command("tui")(tui)
