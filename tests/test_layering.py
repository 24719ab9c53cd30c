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

import pytest

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
        failed = []
        for name in names:
            if name.endswith("__main__"):
                continue  # running `python -m soma.cli` is not importing it
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        assert not failed, "modules that do not import: " + "; ".join(failed)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {NOT_AT_IMPORT!r})
        assert not bad, bad
        print(len(names))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


# Folders holding the project's Python (faces, tool layer, repository tooling, tests).
SOURCE_FOLDERS = ("soma", "soma_agent", "soma_mcp", "tools", "tui", "prompts", "tests")


def _bare_parser_calls(path: Path) -> list[str]:
    """``compile(...)`` / ``ast.parse(...)`` / ``parse`` imported from ast, called in ``path``."""
    import ast

    from soma._pyast import parse

    tree = parse(path.read_text(encoding="utf-8"))
    from_ast = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "ast"
        for alias in node.names
        if alias.name == "parse"
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        bare = isinstance(func, ast.Name) and (func.id == "compile" or func.id in from_ast)
        dotted = (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (func.value.id, func.attr) in (("ast", "parse"), ("builtins", "compile"))
        )
        if bare or dotted:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_parse_of_user_text_goes_through_soma_pyast() -> None:
    # Ruff's TID251 bans ast.parse; it cannot see the bare builtin compile(), so look here.
    files = [p for folder in SOURCE_FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 100, "the walk found the tree"
    allowed = ROOT / "soma" / "_pyast.py"
    found = [hit for path in files if path != allowed for hit in _bare_parser_calls(path)]
    assert not found, f"parse/compile outside soma._pyast (use its parse/compile_source): {found}"


def test_the_parser_scan_finds_a_bare_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scan above must be able to fail: each banned form is found.
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import ast\nfrom ast import parse as p\n"
        "compile('1', 'f', 'exec')\nast.parse('1')\np('1')\nre_compile = 1\n"
    )
    assert _bare_parser_calls(sample) == ["sample.py:3", "sample.py:4", "sample.py:5"]
