"""Starting and stopping this machine's Ray processes (a coordinator or a worker), by PID.

``ray start`` launches daemons (gcs_server, raylet, agents) and exits, so Soma records the
PIDs of the processes that belong to the node it started: those whose command line names
the node's own temp dir, and their descendants. ``stop`` signals exactly those (after
checking each PID still runs the same command line, so a reused PID is left alone),
then SIGKILLs what survives: gcs_server may ignore SIGTERM. Never ``ray stop``, which kills
every Ray process of the machine by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soma.cluster._errors import ClusterError

__all__ = [
    "NodeRecord",
    "cluster_dir",
    "ray_env",
    "read_record",
    "start_ray_node",
    "stop_node",
]

CLUSTER_DIR_ENV = "SOMA_CLUSTER_DIR"


def cluster_dir() -> Path:
    """Where this machine keeps its token, PID files and node records (0700)."""
    path = Path(os.environ.get(CLUSTER_DIR_ENV) or Path.home() / ".soma" / "cluster")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@dataclass
class NodeRecord:
    """A node this machine started: its role, address, Ray temp dir and processes."""

    role: str  # "coordinator" | "worker"
    name: str
    address: str
    temp_dir: str
    pids: dict[int, str] = field(default_factory=dict)  # pid -> command line at start
    resources: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    started: float = 0.0

    def path(self) -> Path:
        return record_path(self.role, self.name)

    def save(self) -> None:
        target = self.path()
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(target)


def record_path(role: str, name: str) -> Path:
    return cluster_dir() / (f"{role}.json" if role == "coordinator" else f"worker-{name}.json")


def read_record(role: str, name: str = "coordinator") -> NodeRecord | None:
    path = record_path(role, name)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["pids"] = {int(k): v for k, v in data["pids"].items()}
    return NodeRecord(**data)


def worker_records() -> list[NodeRecord]:
    found = []
    for path in sorted(cluster_dir().glob("worker-*.json")):
        record = read_record("worker", path.stem.removeprefix("worker-"))
        if record is not None:
            found.append(record)
    return found


def ray_env(token: str | None) -> dict[str, str]:
    """The environment of a Ray process: token auth on when there is a token."""
    env = dict(os.environ)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    else:
        env.update(RAY_AUTH_MODE="disabled")
        env.pop("RAY_AUTH_TOKEN", None)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A job environment that failed to install fails again: Ray's default of 3 attempts
    # (each a fresh virtualenv + pip run) only made a bad requirement take minutes to report.
    env.setdefault("RUNTIME_ENV_RETRY_TIMES", "1")
    return env


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    if beside.exists():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise ClusterError("the `ray` command is missing: pip install 'soma-research[cluster]'")
    return found


def new_temp_dir() -> str:
    # Short: Ray puts Unix sockets under it, and socket paths are limited to ~107 bytes.
    return tempfile.mkdtemp(prefix="soma-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)


def start_ray_node(args: list[str], temp_dir: str, token: str | None, timeout: float) -> dict:
    """Run ``ray start ARGS``; the PIDs (and command lines) of the node's processes."""
    command = [_ray_executable(), "start", *args, f"--temp-dir={temp_dir}"]
    command += ["--disable-usage-stats"]
    try:
        done = subprocess.run(
            command, env=ray_env(token), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        stop_pids(node_processes(temp_dir))
        raise ClusterError(f"`ray start` did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        stop_pids(node_processes(temp_dir))
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise ClusterError(f"`ray start` failed (exit {done.returncode}):\n{tail}")
    return node_processes(temp_dir)


def node_processes(temp_dir: str) -> dict[int, str]:
    """Processes whose command line names ``temp_dir``, with all their descendants."""
    import psutil

    roots: dict[int, str] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if temp_dir in cmdline:
            roots[proc.info["pid"]] = cmdline
    found = dict(roots)
    for pid in roots:
        try:
            for child in psutil.Process(pid).children(recursive=True):
                found.setdefault(child.pid, " ".join(child.cmdline()))
        except psutil.Error:
            continue
    return found


def stop_pids(pids: dict[int, str], grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, exactly these PIDs (only while they run the recorded command)."""
    import psutil

    alive: list[psutil.Process] = []
    for pid, cmdline in pids.items():
        try:
            proc = psutil.Process(pid)
            if " ".join(proc.cmdline()) != cmdline:
                continue  # the PID was reused by something else: not ours to stop
            proc.send_signal(signal.SIGTERM)
            alive.append(proc)
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(alive, timeout=grace)
    for proc in still:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue
    psutil.wait_procs(still, timeout=grace)
    return [p.pid for p in alive]


def stop_node(record: NodeRecord) -> list[int]:
    """Stop a node's processes (those recorded, and any it started since); forget it."""
    pids = dict(record.pids)
    for pid, cmdline in node_processes(record.temp_dir).items():
        pids.setdefault(pid, cmdline)  # e.g. task workers the raylet forked after start
    stopped = stop_pids(pids)
    record.path().unlink(missing_ok=True)
    shutil.rmtree(record.temp_dir, ignore_errors=True)
    return stopped


def describe(record: NodeRecord) -> dict[str, Any]:
    data = asdict(record)
    data["pids"] = sorted(record.pids)
    data["started"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started))
    return data
