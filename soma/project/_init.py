"""``soma init``: scaffold a project that runs offline at once from the bundled templates."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from soma.errors import ProjectError

__all__ = ["EXAMPLES", "Example", "init_project"]


@dataclass(frozen=True)
class Example:
    """A scikit-learn toy dataset the scaffold can be built on."""

    name: str
    loader: str  # sklearn.datasets function
    title: str
    description: str
    n_features: int


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example(
            "digits",
            "load_digits",
            "8x8 handwritten digits (1,797 images, 10 classes)",
            "Which preprocessing and model classify 8x8 handwritten digits best?",
            64,
        ),
        Example(
            "wine",
            "load_wine",
            "wine recognition (178 wines, 13 chemical features, 3 cultivars)",
            "Which pipeline tells the three wine cultivars apart best?",
            13,
        ),
        Example(
            "breast_cancer",
            "load_breast_cancer",
            "Wisconsin breast cancer (569 samples, 30 features, 2 classes)",
            "Which pipeline separates malignant from benign tumours best?",
            30,
        ),
    )
}

_FILTER_FILES = ("scalers.py", "reducers.py", "models.py")


def init_project(
    directory: str | Path = ".",
    example: str = "digits",
    *,
    name: str | None = None,
    force: bool = False,
) -> Path:
    """Create ``soma.toml``, ``data.py`` and ``filters/`` in ``directory``.

    Refuses (ProjectError naming them) when any of those files already exists, unless
    ``force``; other files in the folder are never touched, and an existing
    ``.gitignore`` only gains the lines it lacks (``.soma/``). Returns the project root.
    """
    if example not in EXAMPLES:
        raise ProjectError(
            f"init: unknown example {example!r}; expected one of {', '.join(EXAMPLES)}"
        )
    chosen = EXAMPLES[example]
    root = Path(directory).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ProjectError(f"init: {root} exists and is not a folder")
    files = _render(chosen, name or root.name)
    gitignore = files.pop(".gitignore")
    existing = sorted(rel for rel in files if (root / rel).exists())
    if existing and not force:
        raise ProjectError(
            f"init: {root} already holds {', '.join(existing)}; "
            "pass force=True (--force) to overwrite those files"
        )
    for rel, text in files.items():
        _write_atomic(root / rel, text)
    _merge_gitignore(root / ".gitignore", gitignore)
    return root


def _merge_gitignore(path: Path, template: str) -> None:
    """Add the template's patterns to an existing .gitignore instead of replacing it."""
    if not path.exists():
        _write_atomic(path, template)
        return
    current = path.read_text(encoding="utf-8")
    present = {line.strip() for line in current.splitlines()}
    missing = [
        line
        for line in template.splitlines()
        if line.strip() and not line.startswith("#") and line.strip() not in present
    ]
    if missing:
        sep = "" if current.endswith("\n") or not current else "\n"
        _write_atomic(path, current + sep + "\n".join(missing) + "\n")


def _render(example: Example, name: str) -> dict[str, str]:
    templates = resources.files("soma.project") / "templates"
    values = {
        "{{EXAMPLE}}": example.name,
        "{{NAME}}": name.replace("\\", "\\\\").replace('"', '\\"'),
        "{{DESCRIPTION}}": example.description,
        "{{TITLE}}": example.title,
        "{{LOADER}}": example.loader,
    }

    def fill(text: str) -> str:
        for token, value in values.items():
            text = text.replace(token, value)
        return text

    files = {
        "soma.toml": fill((templates / "soma.toml.tmpl").read_text(encoding="utf-8")),
        "data.py": fill((templates / "data.py.tmpl").read_text(encoding="utf-8")),
        ".gitignore": (templates / "gitignore.tmpl").read_text(encoding="utf-8"),
    }
    for file in _FILTER_FILES:
        text = (templates / "filters" / file).read_text(encoding="utf-8")
        text = text.replace("N_FEATURES = 64 ", f"N_FEATURES = {example.n_features} ")
        files[f"filters/{file}"] = text
    return files


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; project files are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
