"""Cluster benchmark: Soma job overhead vs a bare Ray task, a 40-trial study on 2 workers vs 1,
and the token check. One coordinator and two single-CPU workers on this machine.

    python tools/bench/bench_cluster.py            # re-runs itself in a loopback-only netns as root
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PORT = 6397
ADDRESS = f"127.0.0.1:{PORT}"


def noop(x: int) -> int:
    return x


def trial(seconds: float, x: float) -> float:
    time.sleep(seconds)  # a trial's work; sleep-bound so the shared 2-core host's load stays out
    return (x - 2.0) ** 2


def timed_calls(call, n: int) -> float:
    call()  # warm: the worker process and the function are in place
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n


def study(lab, trials: int, seconds: float, tags: list[str] | None, in_flight: int) -> float:
    """Optuna ask/tell on the driver, trials as jobs on the workers; trials per second."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opt = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    started = time.perf_counter()
    running: dict = {}
    asked = told = 0
    while told < trials:
        while asked < trials and len(running) < in_flight:
            t = opt.ask()
            running[t.number] = (
                t,
                lab.submit(trial, seconds, t.suggest_float("x", -5, 5), tags=tags),
            )
            asked += 1
        import ray

        refs = {job.ref: number for number, (_, job) in running.items()}
        done, _ = ray.wait(list(refs), num_returns=1)
        t, job = running.pop(refs[done[0]])
        opt.tell(t, job.result())
        told += 1
    assert len(opt.trials) == trials
    return trials / (time.perf_counter() - started)


def main() -> dict:
    os.environ["HOME"] = tempfile.mkdtemp(prefix="soma-bench-")
    import ray

    from soma.cluster import Lab, daemon
    from soma.cluster._token import verify_token

    started = daemon.start_coordinator(port=PORT)
    try:
        daemon.start_worker(address=ADDRESS, name="a", cpus=1, tags="a")
        daemon.start_worker(address=ADDRESS, name="b", cpus=1)
        checks = [verify_token(ADDRESS, started.token) for _ in range(50)]
        with Lab.connect(ADDRESS, token=started.token) as lab:
            lab.wait_for_workers(2)
            bare = ray.remote(noop)
            n, rounds = 100, 4  # alternate rounds, keep each side's best: host load varies
            bare_runs, soma_runs = [], []
            for _ in range(rounds):
                bare_runs.append(timed_calls(lambda: ray.get(bare.remote(1)), n))
                soma_runs.append(timed_calls(lambda: lab.submit(noop, 1).result(), n))
            bare_s, soma_s = min(bare_runs), min(soma_runs)
            one = study(lab, 40, 0.25, ["a"], in_flight=2)
            two = study(lab, 40, 0.25, None, in_flight=2)
        return {
            "bare_ray_task_ms": bare_s * 1e3,
            "soma_job_ms": soma_s * 1e3,
            "overhead_ratio": soma_s / bare_s,
            "overhead_ms": (soma_s - bare_s) * 1e3,
            "study_1_worker_trials_per_s": one,
            "study_2_workers_trials_per_s": two,
            "study_speedup": two / one,
            "token_check_ms_median": statistics.median(checks) * 1e3,
            "token_check_ms_max": max(checks) * 1e3,
        }
    finally:
        daemon.stop_worker()
        daemon.stop_coordinator()


if __name__ == "__main__":
    names = [n for _, n in __import__("socket").if_nameindex()]
    if names != ["lo"] and os.geteuid() == 0 and "--in-netns" not in sys.argv:
        # Ray binds every interface: keep the benchmark's cluster on a loopback-only network.
        script = f"ip link set lo up; exec {sys.executable} {os.path.abspath(__file__)} --in-netns"
        sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", script]))
    figures = main()
    print(json.dumps(figures, indent=1))
    print(
        f"per job: bare Ray task {figures['bare_ray_task_ms']:.2f} ms, Soma job "
        f"{figures['soma_job_ms']:.2f} ms ({figures['overhead_ratio']:.2f}x, "
        f"+{figures['overhead_ms']:.2f} ms); 40-trial study: 1 worker "
        f"{figures['study_1_worker_trials_per_s']:.2f} trials/s, 2 workers "
        f"{figures['study_2_workers_trials_per_s']:.2f} ({figures['study_speedup']:.2f}x); "
        f"token check median {figures['token_check_ms_median']:.2f} ms"
    )
