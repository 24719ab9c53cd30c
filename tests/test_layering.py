"""The layering holds: the import contracts pass, and no core module loads a face or Ray.

import-linter checks the static imports (lazy ones included); the import test below checks
what actually loads at import time, which is what "soma never imports Ray" means for the
Ray-using modules of soma.cluster (their Ray imports sit inside functions).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What no soma module may load when imported.
NOT_AT_IMPORT = (
    "soma_tools",
    "soma_agent",
    "soma_mcp",
    "soma_tui",
    "soma_prompts",
    "mcp",
    "textual",
    "langgraph",
    "anthropic",
    "openai",
    "ray",
)


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "lint-imports not found: pip install -e '.[dev]' (import-linter)"
    result = subprocess.run(
        [lint, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_soma_module_loads_a_face_or_ray_when_imported() -> None:
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        import soma
        names = sorted(m.name for m in pkgutil.walk_packages(soma.__path__, "soma."))
        assert len(names) > 50, names  # the walk found the tree
        for name in names:
            if name.endswith("__main__"):
                continue  # running `python -m soma.cli` is not importing it
            importlib.import_module(name)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {NOT_AT_IMPORT!r})
        assert not bad, bad
        print(len(names))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
