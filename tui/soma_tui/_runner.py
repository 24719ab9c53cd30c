"""Start ``soma agent run`` in the background from the TUI and keep track of its process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["AgentLauncher", "cli_embedder_name"]

# `python -m soma.cli` is the `soma` command without needing the script on PATH.
_CLI = "soma.cli"


def cli_embedder_name(embedder: Any) -> str:
    """The ``--embedder`` value (``default`` or ``hashing``) for a KB embedder spec or object."""
    if isinstance(embedder, str):
        return "hashing" if embedder == "hashing" else "default"
    from soma.knowledge import HashingEmbedder

    return "hashing" if isinstance(embedder, HashingEmbedder) else "default"


class AgentLauncher:
    """Spawns agent runs for one project; each writes its output to ``.soma/runs/tui-*.log``.

    The runs are their own process group, so they go on when the TUI quits (stop one with
    the stop control).
    """

    def __init__(self, project_root: Path, *, embedder: str = "default") -> None:
        if embedder not in ("default", "hashing"):
            raise ValueError(f"embedder: expected 'default' or 'hashing', got {embedder!r}")
        self.project_root = Path(project_root)
        self.embedder = embedder
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def command(
        self, goal: str, max_experiments: int, approve: bool = False, planner: str | None = None
    ) -> list[str]:
        """The command line :meth:`start` runs."""
        if not goal.strip():
            raise ValueError("goal: expected a non-empty text")
        if max_experiments < 1:
            raise ValueError(f"max_experiments: expected an integer >= 1, got {max_experiments}")
        argv = [sys.executable, "-m", _CLI, "agent", "run", goal]
        argv += ["--project", str(self.project_root), "--max-experiments", str(max_experiments)]
        argv += ["--approve" if approve else "--no-approve", "--embedder", self.embedder]
        if planner:
            argv += ["--planner", planner]
        return argv

    def start(
        self, goal: str, max_experiments: int, approve: bool = False, planner: str | None = None
    ) -> tuple[int, Path]:
        """Start a run; returns its pid and the log file."""
        argv = self.command(goal, max_experiments, approve, planner)
        log_dir = self.project_root / ".soma" / "runs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"tui-{time.strftime('%Y%m%d-%H%M%S')}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=self.project_root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[process.pid] = process
        return process.pid, log_path

    def reap(self) -> None:
        """Collect the exit status of finished runs (so none lingers as a zombie)."""
        for pid, process in list(self.processes.items()):
            if process.poll() is not None:
                del self.processes[pid]
