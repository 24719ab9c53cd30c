"""One real cluster (a coordinator and two workers with different tags) exercised end to end.

Run by test_cluster.py inside a loopback-only network namespace; writes its findings as
JSON to argv[1]. Everything it starts it stops by PID (never `ray stop`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HOME = tempfile.mkdtemp(prefix="soma-h-")
os.environ["HOME"] = HOME
# Find dead nodes in ~2 s instead of Ray's default ~15 s.
os.environ.update(RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3",
                  RAY_health_check_initial_delay_ms="500")  # fmt: skip
PORT = 6395
ADDRESS = f"127.0.0.1:{PORT}"
out: dict = {"interfaces": sorted(name for _, name in __import__("socket").if_nameindex())}


def sleeper(seconds: float) -> tuple[str, float, float]:
    from soma.cluster._remote import worker_name

    start = time.time()
    time.sleep(seconds)
    return worker_name(), start, time.time()


def tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel built by hand (no build backend, no network)."""
    name, version = "somatinypkg", "0.1"
    files = {
        f"{name}/__init__.py": "ANSWER = 42\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def uses_tiny_package() -> int:
    import somatinypkg

    return somatinypkg.ANSWER


def main() -> None:
    from soma.cluster import Lab, TokenRejected, daemon
    from soma.cluster._token import verify_token

    t0 = time.perf_counter()
    started = daemon.start_coordinator(port=PORT)
    token = started.token
    out["token_file_mode"] = oct(os.stat(started.token_path).st_mode & 0o777)
    daemon.start_worker(address=ADDRESS, name="tagged", cpus=1, max_concurrent=1, tags="gpu")
    daemon.start_worker(address=ADDRESS, name="plain", cpus=1, max_concurrent=2, tags="big-ram")
    out["start_s"] = time.perf_counter() - t0
    try:
        for label, bad in (("wrong", "not-the-token"), ("missing", None)):
            t = time.perf_counter()
            try:
                Lab.connect(ADDRESS, token=bad)
                out[f"token_{label}"] = "accepted"
            except TokenRejected as exc:
                out[f"token_{label}"] = str(exc)
            out[f"token_{label}_s"] = time.perf_counter() - t
        out["token_check_s"] = min(verify_token(ADDRESS, token) for _ in range(5))
        lab = Lab.connect(ADDRESS, token=token)
        lab.wait_for_workers(2)

        jobs = [lab.submit(sleeper, 0.01, tags=["gpu"]) for _ in range(4)]
        out["gpu_tag_workers"] = sorted({j.result()[0] for j in jobs})
        jobs = [lab.submit(sleeper, 0.4, tags=["gpu"]) for _ in range(4)]
        spans = [j.result()[1:] for j in jobs]
        out["tagged_max_overlap"] = max(
            sum(1 for s, e in spans if s < mid < e) for mid in (s + 0.01 for s, _ in spans)
        )

        def fail_here() -> None:
            raise ValueError("bad input")

        try:
            lab.submit(fail_here, tags=["big-ram"]).result()
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"

        wheelhouse = Path(tempfile.mkdtemp(prefix="soma-wh-"))
        tiny_wheel(wheelhouse)
        job = lab.submit(
            uses_tiny_package, requirements=["somatinypkg==0.1"], wheelhouse=wheelhouse
        )
        out["env_answer"] = job.result(timeout=240)
        out["env_key"] = job.env_key
        bad_env = lab.submit(
            uses_tiny_package, requirements=["nosuchpkg==9"], wheelhouse=wheelhouse
        )
        try:
            bad_env.result(timeout=240)
        except Exception as exc:
            out["env_error"] = f"{type(exc).__name__}: {exc}"[:400]

        status = subprocess.run([sys.executable, "-m", "soma.cli", "cluster", "status", "--json"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        out["status_json"] = json.loads(status.stdout) if status.returncode == 0 else status.stderr
        text = subprocess.run([sys.executable, "-m", "soma.cli", "cluster", "status"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        out["status_text"] = text.stdout + text.stderr

        # A worker killed (-9, every process of it) mid-task: its jobs run again elsewhere.
        jobs = [lab.submit(sleeper, 2.0, retries=3) for _ in range(2)]
        time.sleep(1.0)
        from soma.cluster._nodes import node_processes, read_record

        plain = read_record("worker", "plain")
        for pid in node_processes(plain.temp_dir):
            os.kill(pid, 9)
        results = []
        for job in jobs:
            try:
                results.append(job.result(timeout=60)[0])
            except Exception as exc:
                results.append(f"{type(exc).__name__}: {exc}")
        out["after_kill"] = results
        deadline = time.time() + 20
        while time.time() < deadline and lab.health()["workers_dead"] == 0:
            time.sleep(0.3)
        out["health_after_kill"] = lab.health()
        lab.close()
    finally:
        from soma.cluster._nodes import node_processes, read_record, worker_records

        ours = [r.temp_dir for r in [read_record("coordinator"), *worker_records()] if r]
        out["stopped_workers"] = {k: len(v) for k, v in daemon.stop_worker().items()}
        out["stopped_coordinator"] = len(daemon.stop_coordinator())
        out["leftover"] = sum(len(node_processes(d)) for d in ours)
        Path(sys.argv[1]).write_text(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
