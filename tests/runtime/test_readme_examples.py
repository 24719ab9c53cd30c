"""Run the README's ```python blocks as written, in order, in one namespace.

Each README is executed in a fresh temporary working directory (examples may create
``.soma/``). ``SOMA_README_EXTRA`` may name more Markdown files to check the same way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: str) -> list[str]:
    return [match.group(1) for match in FENCE.finditer(markdown)]


def readmes() -> list[Path]:
    paths = [ROOT / "README.md"]
    extra = os.environ.get("SOMA_README_EXTRA")
    if extra:
        paths.extend(Path(p) for p in extra.split(os.pathsep) if p)
    return paths


def test_fence_extraction():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x + 1\n"]


@pytest.mark.parametrize("readme", readmes(), ids=lambda p: p.name)
def test_readme_python_blocks_run(readme, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(readme.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "readme_example"}
    for index, block in enumerate(blocks, start=1):
        code = compile(block, f"{readme.name} python block {index}", "exec")
        exec(code, namespace)
