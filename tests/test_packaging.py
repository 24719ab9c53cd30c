"""The wheel carries what the project promises: its licence text and metadata."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_regression_wheel_ships_the_licence_text(tmp_path: Path) -> None:
    # The project said Apache-2.0 but shipped no LICENSE file and used the deprecated
    # `license = {text = ...}` table.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("soma_research-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        licence = next(n for n in names if n.endswith("licenses/LICENSE"))
        assert "Apache License" in zf.read(licence).decode()
        assert "Version 2.0, January 2004" in zf.read(licence).decode()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = zf.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "License-File: LICENSE" in text
    # Every face ships, each as its own top-level package (tools/soma_tools, tui/soma_tui, ...).
    packages = {n.split("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    wanted = {"soma", "soma_agent", "soma_mcp", "soma_prompts", "soma_tools", "soma_tui"}
    assert wanted <= packages
    assert "soma_tools/_registry.py" in names
