"""Research efficiency: the built-in agent vs Optuna TPE vs Optuna random search.

Tasks: five that do not saturate — diabetes, ``make_friedman2`` and ``make_friedman3``
(regression, R²), ``make_hastie_10_2`` and a hard ``make_classification`` (accuracy) — and the
three toy examples of ``soma init`` (digits, wine, breast_cancer), all offline. Every method
gets the same project: the same filters and their declared search spaces (the space is
``[scaler] >> [reducer] >> model``), the same evaluation (fit on train, score on valid),
the same seed for seeded models. Per task and seed:

* agent: ``run_agent`` with the built-in planner (the full loop: LangGraph, knowledge base,
  tool layer, paired verdicts), 40 experiments, plateau stop off, hashing embedder;
* tpe: ``optuna.samplers.TPESampler(seed)`` over the joint conditional space;
* random: ``optuna.samplers.RandomSampler(seed)`` over the same space.

The table gives the median over seeds of the best validation score after 10 / 20 / 40
experiments, the test score of each method's final pick (its best on validation, refitted on
train and scored once on the test split, by the same code for all three; mean over seeds) and
the median wall time of one 40-experiment run.

Usage::

    .venv/bin/python tools/bench/bench_agent.py --quick       # 1 seed, hard tasks
    .venv/bin/python tools/bench/bench_agent.py               # 5 seeds, all tasks
    .venv/bin/python tools/bench/bench_agent.py --tasks diabetes,hastie --seeds 2
    .venv/bin/python tools/bench/bench_agent.py --out runs.json --markdown  # + JSON, Markdown
    .venv/bin/python tools/bench/bench_agent.py --table-from runs.json      # tables again
    .venv/bin/python tools/bench/bench_agent.py --seeds 5 --first-seed 10 --methods agent
    .venv/bin/python tools/bench/bench_agent.py --overhead    # bookkeeping per experiment

Develop the planner on other seeds (``--first-seed 10``) than the ones the README reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METHODS = ("agent", "tpe", "random")
BUDGETS = (10, 20, 40)

# --- the tasks -------------------------------------------------------------------------------

REGRESSION_MODELS = '''"""Regressors: fit on the training split, forward returns predictions."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge as _SklearnRidge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.svm import SVR as _SklearnSVR

from soma import Filter, search


class _Regressor(Filter):
    _soma_role = "model"

    def forward(self, x, state):
        return state.predict(np.asarray(x, dtype=np.float64))


class Ridge(_Regressor):
    """Linear least squares with an L2 penalty (regression)."""

    alpha = search(1e-3, 1e3, log=True, default=1.0)

    def fit(self, x, y=None):
        return _SklearnRidge(alpha=self.alpha).fit(x, y)


class SVR(_Regressor):
    """Support-vector regression with an RBF kernel (regression)."""

    C = search(1e-2, 1e4, log=True, default=1.0)
    gamma = search(1e-4, 1.0, log=True, default=0.01)
    epsilon = search(1e-3, 10.0, log=True, default=0.1)

    def fit(self, x, y=None):
        return _SklearnSVR(C=self.C, gamma=self.gamma, epsilon=self.epsilon).fit(x, y)


class RandomForest(_Regressor):
    """A forest of regression trees averaging their predictions."""

    n_estimators = search(10, 300, log=True, default=100)
    max_depth = search(2, 32, default=16)
    min_samples_leaf = search(1, 20, log=True, default=1)
    seed = 0

    def fit(self, x, y=None):
        return RandomForestRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, random_state=self.seed, n_jobs=1,
        ).fit(x, y)


class GradientBoost(_Regressor):
    """Gradient-boosted regression trees."""

    n_estimators = search(20, 300, log=True, default=100)
    learning_rate = search(1e-3, 1.0, log=True, default=0.1)
    max_depth = search(1, 8, default=3)
    seed = 0

    def fit(self, x, y=None):
        return GradientBoostingRegressor(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            max_depth=self.max_depth, random_state=self.seed,
        ).fit(x, y)


class KNN(_Regressor):
    """k-nearest-neighbours average (regression)."""

    n_neighbors = search(1, 30, default=5)
    weights = search(choices=["uniform", "distance"])

    def fit(self, x, y=None):
        return KNeighborsRegressor(n_neighbors=self.n_neighbors, weights=self.weights).fit(x, y)
'''

DATA = '''"""Benchmark data: {title} (generated offline, fixed seed), 60 / 20 / 20 splits."""

from __future__ import annotations

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split


def load():
    x, y = {call}
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    strat = {strat}
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.4, random_state=0, stratify=y if strat else None
    )
    x_valid, x_test, y_valid, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest if strat else None
    )
    return {{"train": (x_train, y_train), "valid": (x_valid, y_valid), "test": (x_test, y_test)}}
'''


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # classification | regression | toy
    call: str = ""
    n_features: int = 0
    title: str = ""

    @property
    def metric(self) -> str:
        return "r2" if self.kind == "regression" else "accuracy"


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("diabetes", "regression", "datasets.load_diabetes(return_X_y=True)", 10,
             "diabetes progression (442 patients, 10 features)"),
        Task("friedman2", "regression",
             "datasets.make_friedman2(n_samples=600, noise=120.0, random_state=0)", 4,
             "make_friedman2 (600 samples, noise 120)"),
        Task("friedman3", "regression",
             "datasets.make_friedman3(n_samples=600, noise=0.15, random_state=0)", 4,
             "make_friedman3 (600 samples, noise 0.15)"),
        Task("hastie", "classification",
             "datasets.make_hastie_10_2(n_samples=2000, random_state=0)", 10,
             "make_hastie_10_2 (2,000 samples)"),
        Task("hard_clf", "classification",
             "datasets.make_classification(n_samples=1500, n_features=30, n_informative=8, "
             "n_redundant=6, n_classes=3, class_sep=0.7, flip_y=0.08, random_state=0)", 30,
             "make_classification, 3 classes, 8 of 30 features informative, 8 % label noise"),
        Task("digits", "toy"),
        Task("wine", "toy"),
        Task("breast_cancer", "toy"),
    )
}  # fmt: skip
HARD_TASKS = ("diabetes", "friedman2", "friedman3", "hastie", "hard_clf")
TOY_TASKS = ("digits", "wine", "breast_cancer")


def make_project(task: Task, folder: Path, *, metric: str | None = None) -> Path:
    """A Soma project for ``task`` (the ``soma init`` scaffold, its data and filters swapped).

    ``metric`` overrides the primary metric (e.g. ``mse`` for a regression task).
    """
    from soma.project import init_project

    root = init_project(folder, example="digits" if task.kind != "toy" else task.name)
    if task.kind == "toy":
        return root
    strat = task.kind == "classification"
    (root / "data.py").write_text(
        DATA.format(title=task.title, call=task.call, strat=strat), encoding="utf-8"
    )
    reducers = root / "filters" / "reducers.py"
    text = reducers.read_text(encoding="utf-8").replace(
        "N_FEATURES = 64 ", f"N_FEATURES = {task.n_features} "
    )
    if task.kind == "regression":
        text = text.replace("f_classif", "f_regression").replace("ANOVA F-score", "F-score")
        (root / "filters" / "models.py").write_text(REGRESSION_MODELS, encoding="utf-8")
    reducers.write_text(text, encoding="utf-8")
    primary = metric or task.metric
    second = "mse" if primary != "mse" and task.kind == "regression" else "r2"
    if task.kind != "regression":
        second = "f1_macro"
    toml = root / "soma.toml"
    head = toml.read_text(encoding="utf-8").split("[[metric]]", 1)[0]
    tail = toml.read_text(encoding="utf-8").split("[paths]", 1)[1]
    from soma.project._metrics import BUILTIN_METRICS

    metrics = "".join(
        f'[[metric]]\nname = "{m}"\ndirection = "{BUILTIN_METRICS[m][2]}"\n\n'
        for m in (primary, second)
    )
    toml.write_text(head + metrics + "[paths]" + tail, encoding="utf-8")
    return root


# --- the methods -----------------------------------------------------------------------------


def _space(project: Any) -> tuple[list[str], list[str], list[str], dict[str, type]]:
    from soma_agent._roles import infer_role

    catalog = project.discover_filters()
    roles = {name: infer_role(info) for name, info in catalog.filters.items()}
    names = catalog.names()
    pick = [[n for n in names if roles[n] == r] for r in ("scaler", "reducer", "model")]
    return pick[0], pick[1], pick[2], catalog.classes()


def score_on_test(project: Any, expr: Any, seed: int) -> float:
    """Refit ``expr`` on train and score the project's primary metric on the test split."""
    from soma import Graph

    splits = project.load_data()
    graph = Graph.somatize(expr)
    graph.fit(*splits.train)
    return project.metrics[0].score(splits.test[1], graph.forward(splits.test[0]))


def run_agent_job(task: str, seed: int, budget: int, root: str) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from soma_agent import run_agent
    from soma_agent._history import experiment_value
    from soma_tools import ToolContext

    folder = make_project(TASKS[task], Path(root) / f"agent-{task}-{seed}")
    tools = ToolContext(folder, embedder="hashing")
    metric = tools.project.metrics[0]
    t0 = time.perf_counter()
    result = run_agent(
        tools, f"{metric.direction} validation {metric.name}", max_experiments=budget,
        seed=seed, patience=None, tools=tools,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    values = []
    for exp in tools.kb.experiments(run_id=result.run_id, order="started"):
        values.append(experiment_value(exp, metric.name) if exp.status == "ok" else None)
    best = tools.kb.get(result.best_experiment_id) if result.best_experiment_id else None
    test = None
    if best is not None:
        from soma.experiments import build_graph

        graph = build_graph(best.pipeline_spec, project=tools.project, params={}, seed=seed)
        splits = tools.project.load_data()
        graph.fit(*splits.train)
        test = metric.score(splits.test[1], graph.forward(splits.test[0]))
    tools.close()
    return {"values": values, "test": test, "wall": wall, "direction": metric.direction}


def measure_overhead(task: str, budget: int, embedder: str, root: Path) -> dict[str, float]:
    """One agent run's time split: start-up (until its first journal entry), the loop's
    bookkeeping per experiment (loop wall minus the pipelines' own recorded time, over the
    experiments) and the finish step (the report)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from soma_agent import run_agent
    from soma_tools import ToolContext

    folder = make_project(TASKS[task], root / f"overhead-{task}-{embedder}")
    times: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    tools = ToolContext(folder, embedder=embedder)
    metric = tools.project.metrics[0]
    result = run_agent(
        tools, f"{metric.direction} validation {metric.name}", max_experiments=budget, seed=0,
        patience=None, tools=tools, on_entry=lambda e: times.append((time.perf_counter(),
                                                                     e["kind"])),
    )  # fmt: skip
    end = time.perf_counter()
    exps = list(tools.kb.experiments(run_id=result.run_id))
    tools.close()
    pipelines = sum(e.duration_s or 0.0 for e in exps)
    first = times[0][0]
    last = max(t for t, kind in times if kind == "decision")
    return {
        "experiments": float(len(exps)),
        "startup_s": first - t0,
        "loop_s": last - first,
        "pipelines_s": pipelines,
        "per_experiment_ms": 1000 * (last - first - pipelines) / max(1, len(exps)),
        "finish_s": end - last,
        "total_s": end - t0,
    }


def overhead_table(tasks: list[str], budget: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Agent bookkeeping, one run of {budget} experiments, seed 0")
    cols = ("task", "embedder", "start-up s", "pipelines s", "loop s", "overhead ms/exp",
            "finish s", "total s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("task", "embedder") else "right")
    with tempfile.TemporaryDirectory(prefix="soma-bench-agent-") as root:
        for task in tasks:
            # The default embedder twice: the first run of a process loads the model (in
            # the background), the second finds it loaded.
            for i, embedder in enumerate(("default", "default", "hashing")):
                m = measure_overhead(task, budget, embedder, Path(root) / str(i))
                label = {0: "default (loads the model)", 1: "default (model loaded)"}
                table.add_row(
                    task, label.get(i, embedder), f"{m['startup_s']:.1f}",
                    f"{m['pipelines_s']:.1f}",
                    f"{m['loop_s']:.1f}", f"{m['per_experiment_ms']:.0f}",
                    f"{m['finish_s']:.1f}", f"{m['total_s']:.1f}",
                )  # fmt: skip
    Console(width=150).print(table)


def run_optuna_job(task: str, seed: int, budget: int, root: str, method: str) -> dict[str, Any]:
    import optuna

    from soma import Graph
    from soma.project import load_project

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    project = load_project(make_project(TASKS[task], Path(root) / f"{method}-{task}-{seed}"))
    scalers, reducers, models, classes = _space(project)
    metric = project.metrics[0]
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

    def pipeline(trial: Any) -> Any:
        steps = []
        scaler = trial.suggest_categorical("scaler", ["none", *scalers])
        reducer = trial.suggest_categorical("reducer", ["none", *reducers])
        model = trial.suggest_categorical("model", list(models))
        for name in (scaler, reducer):
            if name != "none":
                steps.append(suggest(trial, name))
        steps.append(suggest(trial, model))
        expr = steps[0]
        for step in steps[1:]:
            expr = expr >> step
        return expr

    def objective(trial: Any) -> float:
        graph = Graph.somatize(pipeline(trial))
        graph.fit(x_tr, y_tr)
        return metric.score(y_va, graph.forward(x_va))

    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if method == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    study = optuna.create_study(direction=metric.direction, sampler=sampler)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=budget, catch=(Exception,))
    wall = time.perf_counter() - t0
    values = [t.value if t.value is not None else None for t in study.trials]
    test = None
    if any(v is not None for v in values):
        fixed = optuna.trial.FixedTrial(study.best_trial.params)
        test = score_on_test(project, pipeline(fixed), seed)
    return {"values": values, "test": test, "wall": wall, "direction": metric.direction}


def _job(args: tuple[str, str, int, int, str]) -> tuple[str, str, int, dict[str, Any]]:
    import warnings

    warnings.filterwarnings("ignore")  # sklearn convergence chatter from extreme params
    method, task, seed, budget, root = args
    if method == "agent":
        out = run_agent_job(task, seed, budget, root)
    else:
        out = run_optuna_job(task, seed, budget, root, method)
    return method, task, seed, out


def best_after(values: list[float | None], n: int, direction: str) -> float | None:
    seen = [v for v in values[:n] if v is not None]
    if not seen:
        return None
    return max(seen) if direction == "maximize" else min(seen)


def print_tables(
    runs: dict[tuple[str, str], list[dict[str, Any]]],
    tasks: list[str],
    n_seeds: int,
    console: Any,
    *,
    markdown: bool = False,
) -> None:
    """The comparison table (and the goal's summary lines) from every method's runs."""
    from rich.table import Table

    table = Table(
        title=f"Best validation score after N experiments — median over {n_seeds} seed(s); "
        "test = the final pick refitted and scored once on the test split (mean over seeds); "
        "wall = one 40-experiment run (median)"
    )
    cols = ("task", "metric", "N", "agent", "TPE", "random", "agent − best peer", "met")
    for col in cols:
        table.add_column(col, justify="left" if col in ("task", "metric") else "right")
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * 2 + "---:|" * (len(cols) - 2)]
    advantage: dict[int, list[float]] = {n: [] for n in BUDGETS}
    test_gap: list[float] = []
    goal_met = True

    def row(*cells: str) -> None:
        table.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")

    for task in tasks:
        t = TASKS[task]
        sign = 1.0 if runs[("agent", task)][0]["direction"] == "maximize" else -1.0
        for n in BUDGETS:
            meds = {}
            for m in METHODS:
                vals = [best_after(r["values"], n, r["direction"]) for r in runs[(m, task)]]
                meds[m] = statistics.median(v if v is not None else -sign * 1e9 for v in vals)
            peer = max(meds["tpe"], meds["random"], key=lambda v: sign * v)
            gap = sign * (meds["agent"] - peer)
            if t.kind != "toy":
                advantage[n].append(gap)
                goal_met &= gap >= 0 or n == BUDGETS[0]
            row(
                task, t.metric, str(n), *(f"{meds[m]:.4f}" for m in METHODS),
                f"{gap:+.4f}",
                "(toy)" if t.kind == "toy" else "–" if n == BUDGETS[0] else
                "yes" if gap >= 0 else "NO",
            )  # fmt: skip
        tests = {m: statistics.mean(r["test"] for r in runs[(m, task)]) for m in METHODS}
        walls = {m: statistics.median(r["wall"] for r in runs[(m, task)]) for m in METHODS}
        if t.kind != "toy":
            test_gap.append(sign * (tests["agent"] - tests["tpe"]))
        row(
            task, t.metric, "test", *(f"{tests[m]:.4f}" for m in METHODS),
            f"{sign * (tests['agent'] - tests['tpe']):+.4f} vs TPE", "",
        )  # fmt: skip
        row(task, "", "wall s", *(f"{walls[m]:.1f}" for m in METHODS), "", "")
        table.add_section()
    console.print(table)
    lines = []
    for n in BUDGETS:
        if advantage[n]:
            mean = statistics.mean(advantage[n])
            lines.append(f"mean advantage over the better peer at N={n}: {mean:+.4f}")
    if test_gap:
        lines.append(
            f"mean test-score gap agent − TPE (final picks): {statistics.mean(test_gap):+.4f}"
        )
    lines.append(
        "agent median >= better peer at 20 and 40 on every non-saturating task: "
        f"{'yes' if goal_met else 'NO'}"
    )
    for line in lines:
        console.print(line)
    if markdown:
        print("\n".join(md))


# --- the table -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, the non-saturating tasks")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5)")
    parser.add_argument("--tasks", default=None, help="comma-separated (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first-seed, first-seed+1, ..."
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--out", default=None, help="write every run (values per experiment, test, wall) as JSON"
    )
    parser.add_argument(
        "--overhead", action="store_true",
        help="time one agent run's bookkeeping per experiment (default vs hashing embedder)",
    )  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--table-from", default=None, help="print the tables of a JSON written by --out"
    )
    args = parser.parse_args(argv)
    n_seeds = args.seeds or (1 if args.quick else 5)
    tasks = (
        [t for t in args.tasks.split(",") if t]
        if args.tasks
        else list(HARD_TASKS if args.quick else (*HARD_TASKS, *TOY_TASKS))
    )
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"--tasks: unknown {', '.join(unknown)}; expected some of {', '.join(TASKS)}")
    if args.overhead:
        import warnings

        warnings.filterwarnings("ignore")
        overhead_table(tasks if args.tasks else ["diabetes"], max(BUDGETS))
        return 0
    if args.table_from:
        from rich.console import Console

        saved = json.loads(Path(args.table_from).read_text(encoding="utf-8"))
        loaded: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in saved:
            loaded.setdefault((r["method"], r["task"]), []).append(r)
        names = [t for t in TASKS if any(k[1] == t for k in loaded)]
        n = len({r["seed"] for r in saved})
        print_tables(loaded, names, n, Console(width=150), markdown=args.markdown)
        return 0
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    methods = [m for m in args.methods.split(",") if m]
    if not methods or any(m not in METHODS for m in methods):
        parser.error(f"--methods: expected some of {', '.join(METHODS)}, got {args.methods!r}")
    from rich.console import Console

    console = Console(width=max(150, Console().width))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soma-bench-agent-") as root:
        jobs = [(m, t, s, max(BUDGETS), root) for t in tasks for s in seeds for m in methods]
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for method, task, seed, out in pool.map(_job, jobs):
                runs.setdefault((method, task), []).append(out)
                best = best_after(out["values"], max(BUDGETS), out["direction"])
                console.print(
                    f"[dim]{method:>6} {task:<13} seed {seed}: best@40 {best:.4f} "
                    f"test {out['test']:.4f} ({out['wall']:.1f} s)[/]"
                )
    if args.out:
        dump: list[dict[str, Any]] = [
            {"method": m, "task": t, "seed": seed, **r}
            for (m, t), rs in runs.items()
            for seed, r in zip(seeds, rs, strict=True)
        ]
        Path(args.out).write_text(json.dumps(dump, indent=1), encoding="utf-8")
    if set(methods) != set(METHODS):
        return 0  # the comparison table needs every method
    print_tables(runs, tasks, n_seeds, console, markdown=args.markdown)
    console.print(f"total wall {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
