"""Cluster benchmark, side by side in one run on one machine (a coordinator and single-CPU
workers): a Soma Remote step (a placed graph node) and a Soma job vs a bare Ray task, a 40-trial
Study(lab=, n_jobs=2) on 2 workers vs 1, and the token check.

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


def _shift_filter(seconds: float):
    from soma import Filter, search

    class SleepShift(Filter):  # defined in __main__: travels to the workers by value
        offset = search(-5.0, 5.0, default=0.0)
        delay = seconds

        def forward(self, x, state):
            time.sleep(self.delay)  # a trial's work; sleep-bound so host load stays out
            return x + self.offset

    class Ident(Filter):
        def forward(self, x, state):
            return x

    return SleepShift, Ident


def soma_study(lab, trials: int, seconds: float) -> float:
    """Study(lab=lab, n_jobs=2): ask/tell here, each trial's evaluation on a worker."""
    import numpy as np

    from soma.study import Study

    SleepShift, _ = _shift_filter(seconds)
    x = np.zeros(4)
    study = Study(SleepShift(), data=(x, np.full(4, 2.0)), metric="mse", n_trials=trials,
                  n_jobs=2, seed=0, sampler="random", lab=lab)  # fmt: skip
    started = time.perf_counter()
    result = study.run()
    assert result.counts.get("ok") == trials, result.counts
    return trials / (time.perf_counter() - started)


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

    from soma import Graph
    from soma.cluster import Lab, daemon
    from soma.cluster._token import verify_token

    started = daemon.start_coordinator(port=PORT)
    try:
        daemon.start_worker(address=ADDRESS, name="a", cpus=1, tags="a")
        checks = [verify_token(ADDRESS, started.token) for _ in range(50)]
        with Lab.connect(ADDRESS, token=started.token) as lab:
            lab.wait_for_workers(1)
            bare = ray.remote(noop)
            _, Ident = _shift_filter(0.0)
            graph = Graph()
            graph.node(Ident(), tags=["a"])  # one Remote step
            n, rounds = 100, 4  # alternate rounds, keep each side's best: host load varies
            bare_runs, soma_runs, step_runs = [], [], []
            with lab.use():
                for _ in range(rounds):
                    bare_runs.append(timed_calls(lambda: ray.get(bare.remote(1)), n))
                    soma_runs.append(timed_calls(lambda: lab.submit(noop, 1).result(), n))
                    step_runs.append(timed_calls(lambda: graph.forward(1), n))
            bare_s, soma_s, step_s = min(bare_runs), min(soma_runs), min(step_runs)
            one = soma_study(lab, 40, 0.25)
            daemon.start_worker(address=ADDRESS, name="b", cpus=1)
            lab.wait_for_workers(2)
            two = soma_study(lab, 40, 0.25)
            raw_one = study(lab, 40, 0.25, ["a"], in_flight=2)  # optuna + bare jobs, no Study
            raw_two = study(lab, 40, 0.25, None, in_flight=2)
        return {
            "bare_ray_task_ms": bare_s * 1e3,
            "soma_remote_step_ms": step_s * 1e3,
            "remote_step_ratio": step_s / bare_s,
            "remote_step_overhead_ms": (step_s - bare_s) * 1e3,
            "soma_job_ms": soma_s * 1e3,
            "overhead_ratio": soma_s / bare_s,
            "overhead_ms": (soma_s - bare_s) * 1e3,
            "study_1_worker_trials_per_s": one,
            "study_2_workers_trials_per_s": two,
            "study_speedup": two / one,
            "raw_ask_tell_speedup": raw_two / raw_one,
            "token_check_ms_median": statistics.median(checks) * 1e3,
            "token_check_ms_max": max(checks) * 1e3,
            "load_average_1m": os.getloadavg()[0],  # a shared 2-core host: say how loaded
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
    f = figures
    rows = [
        ("bare Ray task (ray.get(f.remote()))", f"{f['bare_ray_task_ms']:.2f} ms", "1.00x"),
        ("Soma Remote step (graph.forward, 1 placed node)", f"{f['soma_remote_step_ms']:.2f} ms",
         f"{f['remote_step_ratio']:.2f}x (+{f['remote_step_overhead_ms']:.2f} ms)"),
        ("Soma job (lab.submit(...).result())", f"{f['soma_job_ms']:.2f} ms",
         f"{f['overhead_ratio']:.2f}x (+{f['overhead_ms']:.2f} ms)"),
        ("Study(lab=, n_jobs=2), 40 trials, 1 worker",
         f"{f['study_1_worker_trials_per_s']:.2f} trials/s", "1.00x"),
        ("Study(lab=, n_jobs=2), 40 trials, 2 workers",
         f"{f['study_2_workers_trials_per_s']:.2f} trials/s", f"{f['study_speedup']:.2f}x"),
        ("bare optuna ask/tell + jobs, 2 workers vs 1", "", f"{f['raw_ask_tell_speedup']:.2f}x"),
        ("token check (one GCS call)", f"{f['token_check_ms_median']:.2f} ms median",
         f"max {f['token_check_ms_max']:.2f} ms"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'time / rate':>22}  vs peer")
    for what, value, ratio in rows:
        print(f"{what:<{width}}  {value:>22}  {ratio}")
    print(f"load average (1 min) at the end: {f['load_average_1m']:.2f}")
