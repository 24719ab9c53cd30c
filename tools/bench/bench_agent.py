"""Research efficiency: the built-in agent vs plain Optuna TPE vs random search.

On scikit-learn's toy tasks (digits, wine, breast_cancer, scaffolded with ``soma init``), each
method gets the same pipeline space — ``[scaler] >> [reducer] >> model`` over the example
project's filters and their declared search spaces — and the same evaluation (fit on the
train split, accuracy on the validation split). The table gives the median (and min–max over
seeds) of the best validation accuracy after 10 / 20 / 40 experiments.

* agent: ``soma agent run`` with the built-in planner (the full loop: LangGraph, knowledge
  base, tool layer, verdicts), ``--max-experiments 40``, plateau stop off;
* tpe: ``optuna.samplers.TPESampler(seed)`` over the joint conditional space;
* random: ``optuna.samplers.RandomSampler(seed)`` over the same space.

Usage::

    .venv/bin/python tools/bench/bench_agent.py            # 3 seeds (about 2 minutes)
    .venv/bin/python tools/bench/bench_agent.py --quick    # 1 seed (about 1 minute)
    .venv/bin/python tools/bench/bench_agent.py --full     # 5 seeds (about 3.5 minutes)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

TASKS = ("digits", "wine", "breast_cancer")
METHODS = ("agent", "tpe", "random")
SCALERS = ("StandardScale", "MinMaxScale", "RobustScale")
REDUCERS = ("PCA", "SelectKBest")
MODELS = ("KNN", "LogReg", "RandomForest", "SGD", "SVC")


def _project(task: str, root: Path) -> Path:
    from soma.project import init_project

    return init_project(root / task, example=task)


def run_agent_job(task: str, seed: int, budget: int, root: str) -> list[float | None]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from soma_agent import run_agent
    from soma_agent._history import experiment_value
    from soma_tools import ToolContext

    folder = _project(task, Path(root) / f"agent-{seed}")
    tools = ToolContext(folder, embedder="hashing")
    result = run_agent(
        tools,
        "maximize validation accuracy",
        max_experiments=budget,
        seed=seed,
        patience=None,
        tools=tools,
    )
    values = []
    for exp in tools.kb.experiments(run_id=result.run_id, order="started"):
        values.append(experiment_value(exp, "accuracy") if exp.status == "ok" else None)
    return values


def run_optuna_job(task: str, seed: int, budget: int, root: str, method: str) -> list[float | None]:
    import numpy as np
    import optuna

    from soma import Graph
    from soma.project import load_project

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    project = load_project(_project(task, Path(root) / f"{method}-{seed}"))
    classes = project.discover_filters().classes()
    splits = project.load_data()
    (x_tr, y_tr), (x_va, y_va) = splits.train, splits.valid

    def suggest(trial: Any, name: str) -> Any:
        cls = classes[name]
        params = {}
        for pname, space in cls.search_space().items():
            key = f"{name}.{pname}"
            d = space.to_dict()
            if d["type"] == "float":
                params[pname] = trial.suggest_float(key, d["low"], d["high"], log=d["log"])
            elif d["type"] == "int":
                params[pname] = trial.suggest_int(key, d["low"], d["high"], log=d["log"])
            else:
                params[pname] = trial.suggest_categorical(key, d["choices"])
        if "seed" in cls.param_declarations():
            params["seed"] = seed
        return cls(**params)

    def objective(trial: Any) -> float:
        steps = []
        scaler = trial.suggest_categorical("scaler", ["none", *SCALERS])
        reducer = trial.suggest_categorical("reducer", ["none", *REDUCERS])
        model = trial.suggest_categorical("model", list(MODELS))
        for name in (scaler, reducer):
            if name != "none":
                steps.append(suggest(trial, name))
        steps.append(suggest(trial, model))
        expr = steps[0]
        for step in steps[1:]:
            expr = expr >> step
        graph = Graph.somatize(expr)
        graph.fit(x_tr, y_tr)
        return float(np.mean(graph.forward(x_va) == y_va))

    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if method == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=budget, catch=(Exception,))
    return [t.value if t.value is not None else None for t in study.trials]


def _job(args: tuple[str, str, int, int, str]) -> tuple[str, str, int, list[float | None], float]:
    import warnings

    warnings.filterwarnings("ignore")  # sklearn convergence chatter from extreme params
    method, task, seed, budget, root = args
    t0 = time.perf_counter()
    if method == "agent":
        values = run_agent_job(task, seed, budget, root)
    else:
        values = run_optuna_job(task, seed, budget, root, method)
    return method, task, seed, values, time.perf_counter() - t0


def best_after(values: list[float | None], n: int) -> float | None:
    seen = [v for v in values[:n] if v is not None]
    return max(seen) if seen else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1 seed")
    size.add_argument("--full", action="store_true", help="5 seeds")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    seeds = list(range(1 if args.quick else 5 if args.full else 3))
    budgets = (10, 20, 40)
    tasks = [t for t in args.tasks.split(",") if t]
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width))
    results: dict[tuple[str, str], list[list[float | None]]] = {}
    times: dict[str, float] = dict.fromkeys(METHODS, 0.0)
    with tempfile.TemporaryDirectory(prefix="soma-bench-agent-") as root:
        jobs = [(m, t, s, max(budgets), root) for t in tasks for s in seeds for m in METHODS]
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for method, task, seed, values, took in pool.map(_job, jobs):
                results.setdefault((method, task), []).append(values)
                times[method] += took
                console.print(
                    f"[dim]{method:>6} {task:<13} seed {seed}: best@40 "
                    f"{best_after(values, 40):.4f} ({took:.1f} s)[/]"
                )
    table = Table(
        title=f"Best validation accuracy after N experiments — median (min-max) over "
        f"{len(seeds)} seed(s)"
    )
    for col in ("task", "N", "agent", "TPE", "random", "agent − TPE", "agent ≥ TPE"):
        table.add_column(col, justify="right" if col not in ("task",) else "left")
    all_ok = True
    for task in tasks:
        for n in budgets:
            meds = {}
            cells = {}
            for m in METHODS:
                vals = [best_after(v, n) or 0.0 for v in results[(m, task)]]
                meds[m] = statistics.median(vals)
                cells[m] = f"{meds[m]:.4f} ({min(vals):.3f}-{max(vals):.3f})"
            ok = meds["agent"] >= meds["tpe"]
            all_ok &= ok
            table.add_row(
                task,
                str(n),
                cells["agent"],
                cells["tpe"],
                cells["random"],
                f"{meds['agent'] - meds['tpe']:+.4f}",
                "yes" if ok else "NO",
            )
    console.print(table)
    console.print(
        "CPU time per method (s): "
        + ", ".join(f"{m} {times[m]:.0f}" for m in METHODS)
        + f"; wall {time.perf_counter() - started:.0f} s"
    )
    console.print(f"agent median >= TPE median at every budget: {'yes' if all_ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
