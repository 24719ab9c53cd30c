"""Where a project's knowledge base lives."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_kb_path"]


def default_kb_path(project_dir: str | Path) -> Path:
    """The knowledge base file of the project in ``project_dir``: ``.soma/kb.sqlite``.

    >>> default_kb_path("my-research").as_posix()
    'my-research/.soma/kb.sqlite'
    """
    return Path(project_dir) / ".soma" / "kb.sqlite"
