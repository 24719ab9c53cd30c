"""Where a folder keeps Soma's state: read from ``soma.toml`` when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soma.project._config import CONFIG_FILE

__all__ = ["ProjectPaths", "project_paths"]


@dataclass(frozen=True)
class ProjectPaths:
    """The state files of a project folder (absolute)."""

    root: Path
    cache_dir: Path
    kb_path: Path
    optuna_path: Path
    kb_backend: str = "faiss"  # [kb] backend: "faiss" or "chronos"


def project_paths(directory: str | Path) -> ProjectPaths:
    """The knowledge base, cache and Optuna storage of ``directory``.

    A folder with ``soma.toml`` uses its ``[paths]`` (validated: a bad file raises
    :class:`~soma.errors.ProjectError`); any other folder uses the ``.soma/`` defaults, so
    ``soma kb``, ``soma cache`` and ``soma run`` agree with the MCP server and the agent.

    >>> import tempfile
    >>> paths = project_paths(tempfile.mkdtemp())
    >>> paths.kb_path.relative_to(paths.root).as_posix()
    '.soma/kb.sqlite'
    """
    root = Path(directory).expanduser().resolve()
    if (root / CONFIG_FILE).is_file():
        from soma.project._project import load_project

        project = load_project(root)
        return ProjectPaths(
            project.root,
            project.cache_dir,
            project.kb_path,
            project.optuna_path,
            project.kb_backend,
        )
    state = root / ".soma"
    return ProjectPaths(root, state / "cache", state / "kb.sqlite", state / "optuna.sqlite")
