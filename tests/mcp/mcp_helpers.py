"""Plain helpers of the MCP tests, importable by name from any test module.

They live here, not in conftest.py: ``from conftest import ...`` resolves to whichever
``conftest`` module pytest imported first (the TUI's or the knowledge base's in a full run).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_project(root: Path) -> Path:
    from soma.project import init_project

    return Path(init_project(root, example="digits"))


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env
