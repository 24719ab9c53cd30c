"""The independent MCP Inspector CLI (npm) lists and calls the tools, when it is installed.

The inspector is looked for on disk, never through npx or the registry: in
``$SOMA_INSPECTOR_DIR/node_modules``, in a ``node_modules`` of the working folder or one
above it, and in npm's global folder. When node or the package is absent the test is
skipped (it never fails, hangs or downloads for that reason). To run it::

    npm install --prefix /tmp/inspector @modelcontextprotocol/inspector
    SOMA_INSPECTOR_DIR=/tmp/inspector pytest tests/mcp/test_inspector.py
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = ("@modelcontextprotocol", "inspector")


def _node_modules_folders() -> list[Path]:
    folders = []
    if os.environ.get("SOMA_INSPECTOR_DIR"):
        folders.append(Path(os.environ["SOMA_INSPECTOR_DIR"]) / "node_modules")
    here = Path.cwd()
    folders += [folder / "node_modules" for folder in (here, *here.parents)]
    npm = shutil.which("npm")
    if npm is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [npm, "root", "-g"], capture_output=True, text=True, timeout=30, check=True
            )
            folders.append(Path(done.stdout.strip()))
    return folders


def _inspector_cli() -> list[str]:
    """``node <inspector's bin>``, or skip the test when either is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    for folder in _node_modules_folders():
        manifest = folder.joinpath(*PACKAGE, "package.json")
        if manifest.is_file():
            bins = json.loads(manifest.read_text(encoding="utf-8")).get("bin", {})
            entry = bins.get("mcp-inspector") if isinstance(bins, dict) else bins
            if entry:
                return [node, str(manifest.parent / entry)]
    pytest.skip("@modelcontextprotocol/inspector is not installed (set SOMA_INSPECTOR_DIR)")


def _inspector(project: Path, *method: str) -> subprocess.CompletedProcess[str]:
    args = [
        *_inspector_cli(),
        "--cli",
        sys.executable,
        "-m",
        "soma.cli",
        "mcp",
        "--project",
        str(project),
        "--embedder",
        "hashing",
        *method,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=120, cwd=project, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the MCP Inspector CLI did not answer within 120 s")


def test_inspector_lists_and_calls_the_tools(example_project: Path) -> None:
    listed = _inspector(example_project, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    names = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert len(names) == 13 and {"run_pipeline", "query_knowledge_base"} <= names

    called = _inspector(
        example_project,
        "--method",
        "tools/call",
        "--tool-name",
        "list_filters",
        "--tool-arg",
        "name_contains=PCA",
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert [f["name"] for f in result["structuredContent"]["filters"]] == ["PCA"]
