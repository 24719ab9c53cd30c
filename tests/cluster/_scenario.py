"""One real cluster (a coordinator and two workers with different tags) exercised end to end.

Run by test_cluster.py inside a loopback-only network namespace; writes its findings as
JSON to argv[1]. Everything it starts it stops by PID (never `ray stop`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
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


def _filters():  # defined here, in __main__: they reach the workers by value (cloudpickle)
    from soma import Filter, search

    class Center(Filter):
        def fit(self, x, y=None):
            return sum(x) / len(x)

        def forward(self, x, state):
            from soma.cluster._remote import worker_name

            return [v - state for v in x], worker_name()

    class Boom(Filter):
        def forward(self, x, state):
            raise ValueError("bad input")

    class Slow(Filter):
        def forward(self, x, state):
            time.sleep(60)
            return x

    class SlowShift(Filter):
        offset = search(-5.0, 5.0, default=0.0)
        delay = 0.3

        def forward(self, x, state):
            time.sleep(self.delay)
            return x + self.offset

    return Center, Boom, Slow, SlowShift


def graph_on_the_cluster(lab) -> None:
    """Remote steps: placement by tag, the cache consulted first, errors, cancellation."""
    import threading

    from soma import Cache, Graph

    Center, Boom, Slow, _ = _filters()
    g = Graph(cache=Cache())
    g.node(Center(), tags=["gpu"])
    out["plan_text"] = str(g.compile())
    seen: list = []
    g.on_event(lambda e: seen.append((e.kind, e.node, e.worker)))
    with lab.use():
        values, ran_on = g.fit_forward([1.0, 2.0, 3.0])
        out["remote_values"], out["remote_ran_on"] = values, ran_on
        out["remote_events_1"] = [list(e) for e in seen if e[0] == "node_finished"]
        seen.clear()
        g.fit_forward([1.0, 2.0, 3.0])  # cached: nothing is dispatched
        out["remote_events_2"] = [list(e) for e in seen if e[0] == "node_finished"]
        out["remote_status_2"] = g.last_run.nodes["center"].status
        boom = Graph()
        boom.node(Boom(), tags=["big-ram"])
        try:
            boom.fit_forward([1.0])
        except Exception as exc:
            out["remote_error"] = f"{type(exc).__name__}: {exc}"
            out["remote_error_worker"] = getattr(exc, "worker", None)
        nowhere = Graph()
        nowhere.node(Center(), tags=["tpu"])
        t = time.perf_counter()
        try:
            nowhere.fit_forward([1.0])
        except Exception as exc:
            out["infeasible_error"] = f"{type(exc).__name__}: {exc}"
        out["infeasible_s"] = time.perf_counter() - t
        slow = Graph()
        slow.node(Slow(), tags=["big-ram"])
        threading.Timer(1.0, lab.cancel).start()
        t = time.perf_counter()
        try:
            slow.forward([1.0])
        except Exception as exc:
            out["cancel_error"] = f"{type(exc).__name__}: {exc}"
        out["cancel_s"] = time.perf_counter() - t
    backend_graph = Graph(backend=lab.backend())
    backend_graph.node(Center(), tags=["big-ram"])
    out["backend_ran_on"] = backend_graph.fit_forward([4.0, 6.0])[1]
    data_refs_to_the_workers(lab, Center)


def data_refs_to_the_workers(lab, Center) -> None:
    """Data in a store: a placed node's worker reads the DataRef; the driver never does."""
    import numpy as np

    from soma import Graph
    from soma.data import DataRef, LocalStore

    store = LocalStore(tempfile.mkdtemp(prefix="soma-store-"))
    x = store.put(np.arange(100_000.0))  # 800 KB: travels as a reference of a few hundred bytes
    reads: list[str] = []
    resolve = DataRef.resolve

    def counted(self):  # the driver's class only: workers unpickle their own (by reference)
        reads.append(self.key)
        return resolve(self)

    DataRef.resolve = counted
    try:
        with lab.use():
            placed = Graph()
            placed.node(Center(), tags=["big-ram"])
            values, out["ref_ran_on"] = placed.fit_forward(x)
            out["ref_driver_reads"] = len(reads)
            out["ref_first_values"] = [float(v) for v in values[:2]]
            here = Graph()  # the same node without a placement runs here: the driver reads
            here.node(Center())
            here.fit_forward(x)
            out["ref_driver_reads_local"] = len(reads) - out["ref_driver_reads"]
    finally:
        DataRef.resolve = resolve


def _study(lab, folder: Path, name: str, trials: int, jobs: int, delay: float = 0.3):
    import numpy as np

    from soma.study import Study

    *_, SlowShift = _filters()
    x = np.zeros(4)
    return Study(SlowShift(delay=delay), data=(x, np.full(4, 2.0)), metric="mse", n_trials=trials,
                 n_jobs=jobs, seed=0, sampler="random", name=name, lab=lab,
                 storage=str(folder / "optuna.sqlite"))  # fmt: skip


def _stored_trials(folder: Path, name: str) -> list[dict]:
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'optuna.sqlite'}")
    found = []
    for t in study.get_trials(deepcopy=False):
        text = json.dumps([t.user_attrs, t.system_attrs], default=str)
        named = re.search(r'"worker": "([^"]+)"', text)
        worker = named.group(1) if named else None
        found.append({"number": t.number, "state": t.state.name, "worker": worker})
    return found


def study_on_the_cluster(lab, folder: Path) -> None:
    result = _study(lab, folder, "across", 8, 3).run()
    out["study_counts"] = result.counts
    out["study_stored"] = _stored_trials(folder, "across")


def study_with_a_worker_killed(lab, folder: Path) -> None:
    """kill -9 every process of worker 'plain' while a study runs on both workers."""
    import threading

    from soma.cluster._nodes import node_processes, read_record

    study = _study(lab, folder, "killed", 10, 3, delay=1.0)
    box: dict = {}
    third = threading.Event()
    runner = threading.Thread(
        target=lambda: box.setdefault("result", study.run(progress=lambda p: p.done == 3
                                                          and third.set()))
    )  # fmt: skip
    runner.start()
    third.wait(timeout=60)  # 3 trials told: both workers have run some, 3 are in flight
    # Kill while 'plain' runs a trial (its slots read busy), so a trial must run again.
    running, deadline = 0, time.time() + 5
    while not running and time.time() < deadline:
        running = next((n["jobs_running"] for n in lab.workers() if n["name"] == "plain"), 0)
        time.sleep(0.05)
    out["running_on_plain_at_kill"] = running
    plain = read_record("worker", "plain")
    for pid in node_processes(plain.temp_dir):
        os.kill(pid, 9)
    runner.join(timeout=120)
    result = box.get("result")
    out["killed_counts"] = result.counts if result else "study did not finish"
    out["killed_errors"] = [t.error for t in result.trials if t.error] if result else []
    out["killed_stored"] = _stored_trials(folder, "killed")


_TOOLS_ON_THE_CLUSTER = """
import json, sys
import optuna
import soma_tools as T
from soma.cluster._study import last_worker
from soma.project import init_project

root = init_project(sys.argv[1], example="wine")
with open(root / "soma.toml", "a") as handle:
    handle.write('\\n[cluster]\\naddress = "%s"\\n')
ctx = T.ToolContext(root, embedder="hashing")
spec = "StandardScale() >> LogReg(C=1.0)"
run = T.run_pipeline(ctx, T.RunPipelineInput(spec=spec))
pipeline_worker = last_worker()
result = T.run_study(ctx, T.RunStudyInput(spec=spec, n_trials=3, sampler="random", seed=0,
                                          name="on-cluster"))
study = optuna.load_study(study_name="on-cluster", storage=f"sqlite:///{root}/.soma/optuna.sqlite")
texts = [json.dumps([t.user_attrs, t.system_attrs], default=str) for t in study.trials]
workers = sorted({w for w in ("tagged", "plain") for text in texts if f'"worker": "{w}"' in text})
found = {"pipeline_worker": pipeline_worker, "value": run.value,
         "kb_status": ctx.kb.get(run.experiment_id).status,
         "study_trials": len(study.trials), "study_workers": workers}
ctx.close()

# The agent (what `soma agent run` calls) goes through the same tools: its experiments are
# jobs of this process's Lab (the project's [cluster] address), each naming its worker.
from soma.cluster.lab import project_lab
from soma_agent import run_agent

lab = project_lab("%s")
before = len(lab.history())
agent = run_agent(root, "maximize validation accuracy", max_experiments=2, seed=0,
                  embedder="hashing")
jobs = lab.history()[before:]
found.update(agent_status=agent.status, agent_experiments=agent.n_experiments,
             agent_jobs=[job["what"].split()[0] for job in jobs],
             agent_workers=sorted({job["worker"] for job in jobs}))
print(json.dumps(found))
"""


def tools_on_the_cluster(folder: Path) -> None:
    """A project whose soma.toml names the cluster: run_pipeline and run_study use it."""
    done = subprocess.run(
        [sys.executable, "-c", _TOOLS_ON_THE_CLUSTER % (ADDRESS, ADDRESS), str(folder / "wine")],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    out["tools"] = json.loads(lines[-1]) if lines else (done.stdout + done.stderr)[-3000:]


_SHIP_SOMA = """
import json, sys
from soma.cluster import Lab

def where_soma():
    import soma
    return soma.__file__

lab = Lab.connect(sys.argv[1], token=sys.argv[2], ship_soma=True)
found = lab.submit(where_soma).result()
print(json.dumps({"ships": lab.info()["ships_soma"], "worker_soma": found}))
lab.close()
"""


def soma_shipped_to_the_workers(token: str) -> None:
    """A second driver that sends its Soma along: the worker imports that copy."""
    # Run from elsewhere than the checkout: Ray puts the driver's folder on the workers'
    # sys.path, where /work/main/soma would shadow the shipped copy on this one machine.
    done = subprocess.run([sys.executable, "-c", _SHIP_SOMA, ADDRESS, token],
                          capture_output=True, text=True, timeout=180,
                          cwd=tempfile.mkdtemp(prefix="soma-driver-"))  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    out["shipped"] = json.loads(lines[-1]) if lines else (done.stdout + done.stderr)[-3000:]


def pbt_on_the_cluster(lab) -> None:
    """PBT members in actors on both workers (one per slot: 'tagged' 1, 'plain' 2)."""
    import numpy as np

    from soma import search
    from soma.pbt import PBT, IterativeFilter

    class Mean(IterativeFilter):
        lr = search(0.01, 1.0, log=True, default=0.1)

        def init_state(self, x, y=None):
            return (0.0, "")

        def partial_fit(self, x, y, state, steps):
            from soma.cluster._remote import worker_name

            value = state[0]
            for _ in range(steps):
                value += self.lr * (float(np.mean(y)) - value)
            return (value, worker_name())

        def forward(self, x, state):
            return np.full(len(x), state[0])

    x, y = np.zeros(5), np.full(5, 3.0)
    pbt = PBT(Mean(), data=(x, y), metric="mse", population=4, rounds=3, seed=0, lab=lab)
    result = pbt.run()
    out["pbt_members"] = len(result.population)
    out["pbt_errors"] = [m.error for m in result.population if m.error]
    out["pbt_workers"] = sorted({m.state[1] for m in result.population if m.state})
    out["pbt_best"] = result.best_value


def uses_tiny_package() -> int:
    import somatinypkg

    return somatinypkg.ANSWER


_STAGE = [time.perf_counter()]


def mark(stage: str) -> None:
    """Seconds per stage, and the findings so far on disk (a timeout still leaves them)."""
    now = time.perf_counter()
    out.setdefault("stage_s", {})[stage] = round(now - _STAGE[0], 1)
    _STAGE[0] = now
    Path(sys.argv[1]).write_text(json.dumps(out, default=str))


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
    mark("start")
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
        # Both environments are built at once (each install takes tens of seconds here).
        t = time.perf_counter()
        job = lab.submit(
            uses_tiny_package, requirements=["somatinypkg==0.1"], wheelhouse=wheelhouse
        )
        bad_env = lab.submit(
            uses_tiny_package, requirements=["nosuchpkg==9"], wheelhouse=wheelhouse
        )
        out["env_answer"] = job.result(timeout=240)
        out["env_answer_s"] = time.perf_counter() - t
        out["env_key"] = job.env_key
        try:
            bad_env.result(timeout=240)
        except Exception as exc:
            out["env_error"] = f"{type(exc).__name__}: {exc}"[:400]
        out["env_error_s"] = time.perf_counter() - t

        mark("envs")
        status = subprocess.run([sys.executable, "-m", "soma.cli", "cluster", "status", "--json"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        out["status_json"] = json.loads(status.stdout) if status.returncode == 0 else status.stderr
        text = subprocess.run([sys.executable, "-m", "soma.cli", "cluster", "status"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        out["status_text"] = text.stdout + text.stderr

        folder = Path(tempfile.mkdtemp(prefix="soma-study-"))
        mark("jobs")
        graph_on_the_cluster(lab)
        mark("graph")
        study_on_the_cluster(lab, folder)
        mark("study")
        tools_on_the_cluster(folder)
        mark("tools")
        soma_shipped_to_the_workers(token)
        mark("ship")
        pbt_on_the_cluster(lab)
        mark("pbt")
        # A worker killed (-9, every process of it) mid-study: its trials run again elsewhere.
        study_with_a_worker_killed(lab, folder)
        deadline = time.time() + 20
        while time.time() < deadline and lab.health()["workers_dead"] == 0:
            time.sleep(0.3)
        out["health_after_kill"] = lab.health()
        mark("kill")
        dead = subprocess.run([sys.executable, "-m", "soma.cli", "cluster", "status", "--json"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        out["status_after_kill"] = json.loads(dead.stdout) if dead.returncode == 0 else dead.stderr
        mark("status")
        lab.close()
        mark("close")
    except BaseException:
        out["crash"] = traceback.format_exc()[-4000:]
        raise
    finally:
        from soma.cluster._nodes import node_processes, read_record, worker_records

        ours = [r.temp_dir for r in [read_record("coordinator"), *worker_records()] if r]
        out["stopped_workers"] = {k: len(v) for k, v in daemon.stop_worker().items()}
        mark("stop_workers")
        out["stopped_coordinator"] = len(daemon.stop_coordinator())
        out["leftover"] = sum(len(node_processes(d)) for d in ours)
        mark("stop")
        Path(sys.argv[1]).write_text(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
