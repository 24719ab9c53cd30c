"""Issue 17, item 9: Optuna's views of a study in a Markdown report, and ``soma dashboard``
serving optuna-dashboard on the project's storage (started, read over HTTP, stopped by PID)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import soma

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIEWS = ("history", "importances", "parallel", "slice", "contour")


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits project with one SVC study of 6 trials (two parameters, so every view)."""
    from soma.project import init_project

    project = Path(init_project(tmp_path_factory.mktemp("p") / "digits", example="digits"))
    code, out = soma(
        "study", "run", "MinMaxScale() >> SVC()", "-p", str(project), "-n", "6",
        "--seed", "0", "--name", "svc", "--embedder", "hashing",
    )  # fmt: skip
    assert code == 0, out
    return project


def test_regression_study_report_has_optunas_views(studied: Path) -> None:
    code, out = soma("study", "report", "svc", "-p", str(studied), "--json")
    assert code == 0, out
    result = json.loads(out)
    folder = studied / ".soma" / "reports" / "studies" / "svc"
    assert result["path"] == str(folder / "svc-study.md")
    md = Path(result["path"]).read_text(encoding="utf-8")
    for kind in VIEWS:
        png = folder / f"svc-{kind}.png"
        assert result["plots"][kind] == str(png), kind
        assert png.read_bytes()[:8] == PNG_MAGIC, kind
        assert f"]({png.name})" in md, kind
    assert "## Best trial" in md and "| svc.C |" in md and "| svc.gamma |" in md
    code, out = soma("study", "report", "nope", "-p", str(studied))
    assert code == 1 and "no study named 'nope'" in out and "known: svc" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_regression_soma_dashboard_serves_the_projects_studies(studied: Path) -> None:
    pytest.importorskip("optuna_dashboard", reason="the [dashboard] extra is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "soma.cli", "dashboard", "-p", str(studied), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
        # As a script's background job starts it: SIGINT ignored. Ctrl-C (SIGINT) must still
        # stop it (it ran on until SIGKILL when CI ran the suite from such a job).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, page = _get(f"http://127.0.0.1:{port}/")  # redirects to /dashboard
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "optuna-dashboard did not start in 60 s"
                time.sleep(0.3)
        assert status == 200 and b"<html" in page.lower()
        _, body = _get(f"http://127.0.0.1:{port}/api/studies")
        names = [s["study_name"] for s in json.loads(body)["study_summaries"]]
        assert names == ["svc"]
        # A second dashboard on the same port: one line, exit 1, nothing served.
        code, out = soma("dashboard", "-p", str(studied), "--port", str(port))
        assert code == 1 and out.strip().splitlines() == [
            f"error: 127.0.0.1:{port} is already in use; choose another with --port"
        ]
    finally:
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C: the server closes its socket
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    printed = proc.stdout.read().decode()  # type: ignore[union-attr]
    assert f"optuna-dashboard on http://127.0.0.1:{port}/" in printed
    assert proc.returncode == 0, printed


def test_regression_soma_dashboard_without_studies_says_so(tmp_path: Path) -> None:
    pytest.importorskip("optuna_dashboard", reason="the [dashboard] extra is not installed")
    code, out = soma("dashboard", "-p", str(tmp_path))
    assert code == 1 and "no studies in" in out and "soma study run" in out
