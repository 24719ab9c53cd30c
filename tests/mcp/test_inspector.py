"""The independent MCP Inspector CLI (npm) lists and calls the tools, when it is installed.

Skipped cleanly when npx or the inspector package is absent: the test never downloads it.
``SOMA_INSPECTOR_DIR`` may name a folder whose node_modules holds the inspector.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "@modelcontextprotocol/inspector"


def _inspector(project: Path, *method: str) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed")
    cwd = os.environ.get("SOMA_INSPECTOR_DIR", str(project))
    args = [
        npx,
        "--no-install",
        PACKAGE,
        "--cli",
        sys.executable,
        "-m",
        "soma.cli",
        "mcp",
        "--project",
        str(project),
        *method,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "npm_config_yes": "false"}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the MCP Inspector CLI did not answer within 120 s")
    missing = ("missing packages", "could not determine executable", "not found", "E404")
    if done.returncode != 0 and any(m in done.stderr for m in missing):
        pytest.skip(f"{PACKAGE} is not installed (npx --no-install refused)")
    return done


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
