"""Run the README's ```python blocks as written, in order, in one namespace.

Each README is executed in a fresh temporary working directory (examples may create
``.soma/``). ``SOMA_README_EXTRA`` may name more Markdown files to check the same way.
The test cannot pass vacuously: a README without ```python blocks fails, and so does a
Python block the runner would not pick up (```py, ```python3, an indented or ~~~ fence).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from soma._pyast import compile_source

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# Any fence opening or closing line (CommonMark: up to 3 spaces, ``` or ~~~, an info string).
ANY_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")
PYTHON_INFO = {"python", "py", "python3", "py3"}


def python_blocks(markdown: str) -> list[str]:
    return [match.group(1) for match in FENCE.finditer(markdown)]


def python_fences(markdown: str) -> list[tuple[int, str]]:
    """(line number, opening line) of every fenced block whose language is Python."""
    found: list[tuple[int, str]] = []
    closing: str | None = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        match = ANY_FENCE.match(line)
        if match is None:
            continue
        marker, info = match.groups()
        if closing is None:
            closing = marker
            if info.split(" ")[0].lower() in PYTHON_INFO:
                found.append((number, line))
        elif marker[0] == closing[0] and len(marker) >= len(closing) and not info:
            closing = None
    return found


def unrun_python_fences(markdown: str) -> list[str]:
    """The Python blocks ``python_blocks`` would skip, as 'line N: <opening line>'."""
    run = {markdown.count("\n", 0, m.start()) + 1 for m in FENCE.finditer(markdown)}
    return [f"line {n}: {line!r}" for n, line in python_fences(markdown) if n not in run]


def readmes() -> list[Path]:
    paths = [ROOT / "README.md"]
    extra = os.environ.get("SOMA_README_EXTRA")
    if extra:
        paths.extend(Path(p) for p in extra.split(os.pathsep) if p)
    return paths


def test_fence_extraction():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x + 1\n"]
    assert unrun_python_fences(text) == []


def test_a_python_block_the_runner_would_skip_is_found():
    text = (
        "```python\na = 1\n```\n"
        "```py\nb = 2\n```\n"
        "  ```python\nc = 3\n  ```\n"
        "~~~python\nd = 4\n~~~\n"
        "````markdown\n```python\nnot a block: inside another fence\n```\n````\n"
    )
    assert unrun_python_fences(text) == [
        "line 4: '```py'",
        "line 7: '  ```python'",
        "line 10: '~~~python'",
    ]


@pytest.mark.parametrize("readme", readmes(), ids=lambda p: p.name)
def test_readme_python_blocks_run(readme, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = readme.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert blocks, f"{readme}: no ```python blocks, so none of its examples is tested"
    skipped = unrun_python_fences(text)
    assert not skipped, f"{readme}: Python blocks this test would not run: {skipped}"
    namespace: dict = {"__name__": "readme_example"}
    ran = 0
    for index, block in enumerate(blocks, start=1):
        code = compile_source(block, f"{readme.name} python block {index}")
        exec(code, namespace)
        ran += 1
    assert ran == len(python_fences(text))
