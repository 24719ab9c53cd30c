"""The faces' command groups come through the ``soma.commands`` entry points.

The core CLI imports no face; ``soma agent`` / ``soma mcp`` / ``soma tui`` load their face on
use, and a face that is missing or cannot import says in one line what to install.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soma.cli import _faces, _register, app

FACES = ("soma_agent", "soma_mcp", "soma_tui", "soma_tools")


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=_faces.ENTRY_POINT_GROUP)


def test_each_face_registers_its_command_by_entry_point() -> None:
    eps = _faces.face_entry_points()
    assert {n: eps[n].value for n in ("agent", "mcp", "tui")} == {
        "agent": "soma_agent.cli:register",
        "mcp": "soma_mcp.cli:register",
        "tui": "soma_tui.cli:register",
    }


def test_the_faces_commands_run_through_soma() -> None:
    _register()
    runner = CliRunner()
    for argv, expected in (
        (["agent", "--help"], "inject"),
        (["mcp", "config", "--help"], "claude_desktop_config.json"),
        (["tui", "--help"], "--kb"),
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert expected in result.output


def test_a_core_command_imports_no_face() -> None:
    # `soma run --help` builds the CLI and runs a core command: no face may load on the way.
    code = textwrap.dedent(
        f"""
        import sys
        from soma.cli import _register, app
        from typer.testing import CliRunner
        _register()
        result = CliRunner().invoke(app, ["run", "--help"])
        assert result.exit_code == 0, result.output
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FACES!r})
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_face_missing_a_dependency_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fake_face"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("import not_a_real_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        _faces, "face_entry_points", lambda: {"tui": _entry("tui", "fake_face.cli:register")}
    )
    _register()
    result = CliRunner().invoke(app, ["tui", "--project", "somewhere"])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert (
        "soma tui: the terminal dashboard (soma_tui) needs the 'not_a_real_dependency_xyz'" in line
    )
    assert "pip install not_a_real_dependency_xyz" in line
    # The listing still works and marks the command as unavailable.
    listing = CliRunner().invoke(app, ["--help"])
    assert listing.exit_code == 0
    assert "unavailable" in listing.output


def test_a_face_whose_package_is_absent_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        _faces, "face_entry_points", lambda: {"mcp": _entry("mcp", "soma_no_such_face:register")}
    )
    _register()
    result = CliRunner().invoke(app, ["mcp"])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert "soma mcp: the MCP server (soma_mcp) is not installed" in line
    assert "pip install soma-research" in line


def test_a_known_face_without_an_entry_point_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_faces, "face_entry_points", dict)
    _register()
    result = CliRunner().invoke(app, ["agent", "run", "goal"])
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert "soma agent: the research agent (soma_agent) is not installed" in line
    # An unknown name stays click's own error.
    unknown = CliRunner().invoke(app, ["no-such-command"])
    assert unknown.exit_code == 2
    assert "No such command" in unknown.output
