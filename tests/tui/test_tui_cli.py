"""``soma tui``: argument errors, and the real app started in a pseudo-terminal and quit."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from soma.cli import _register, app


def test_tui_refuses_a_folder_without_soma_toml(tmp_path: Path) -> None:
    _register()
    result = CliRunner().invoke(app, ["tui", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert "soma.toml" in result.output


def test_tui_refuses_a_kb_that_is_a_folder(tmp_path: Path) -> None:
    _register()
    result = CliRunner().invoke(app, ["tui", "--kb", str(tmp_path)])
    assert result.exit_code == 1
    assert "--kb: expected a file" in result.output


def test_soma_tui_runs_in_a_terminal_and_quits_on_q(seeded_kb) -> None:
    path, _ = seeded_kb
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    process = subprocess.Popen(
        [sys.executable, "-m", "soma.cli", "tui", "--kb", str(path)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    screen = b""
    try:
        deadline = time.monotonic() + 60
        while b"preprocessing" not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(leader, 65536)
                except OSError:
                    break
        assert b"preprocessing" in screen, screen[-2000:]
        os.write(leader, b"q")
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    os.read(leader, 65536)
                except OSError:
                    break
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


def test_tui_refuses_an_unknown_embedder(tmp_path: Path) -> None:
    _register()
    result = CliRunner().invoke(
        app, ["tui", "--kb", str(tmp_path / "kb.sqlite"), "--embedder", "word2vec"]
    )
    assert result.exit_code == 1
    assert "--embedder: expected default, minilm or hashing" in result.output


def test_tui_project_opens_its_kb_and_can_start_runs(tmp_path: Path, monkeypatch) -> None:
    import soma_tui
    from soma.project import init_project, load_project

    root = init_project(tmp_path / "proj", example="digits")
    calls: list[tuple[Path, dict[str, object]]] = []
    monkeypatch.setattr(soma_tui, "run", lambda kb, **kw: calls.append((kb, kw)))
    _register()
    result = CliRunner().invoke(
        app, ["tui", "--project", str(root), "--embedder", "hashing"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    ((kb_path, options),) = calls
    assert kb_path == Path(load_project(root).kb_path)
    assert options == {"project_root": Path(load_project(root).root), "embedder": "hashing"}
