"""Studies: Soma's per-trial overhead against raw Optuna, and a digits pipeline search.

1. **Overhead.** The same objective and the same seeded sampler, once as a plain Optuna
   objective and once as a Soma ``Study`` over a one-node graph (trial graph copy, fit,
   forward, metric, cache, run events, the ``soma`` user attribute). Objectives: a 2-D
   quadratic (nothing to compute: pure framework cost) and a ridge regression on 200 x 10
   (a small real fit). Goal: Soma <= 1.2x Optuna.
2. **Digits.** ``scaler x PCA x model`` (StandardScale / MinMaxScale / RobustScale, PCA
   n_components / whiten, LogReg C / SVC C, gamma / KNN k, weights) from ``soma init``'s
   example project, searched with TPE; plain Optuna over the same scikit-learn pipeline and
   the same ranges side by side. Best validation accuracy and wall time after 30 / 60 /
   100 trials. Soma runs three times with the same seed (so the same trials): caching off,
   a fresh shared cache (trials sharing a scaler / PCA prefix reuse it), and the same
   study again on that now-warm cache (a rerun, or a resumed study: every trial a hit).

Usage::

    .venv/bin/python tools/bench/bench_study.py            # ~2-3 minutes on 2 cores
    .venv/bin/python tools/bench/bench_study.py --quick    # ~40 s
    .venv/bin/python tools/bench/bench_study.py --full     # 3 seeds, more overhead trials
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from rich.console import Console
from rich.table import Table

from soma import Cache, Filter, search
from soma.study import Study

console = Console()
optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("soma").setLevel(logging.ERROR)


# -- 1. overhead -----------------------------------------------------------------------


class Quadratic(Filter):
    a = search(-5.0, 5.0, default=0.0)
    b = search(-5.0, 5.0, default=0.0)

    def forward(self, x, state):
        return (self.a - 1.3) ** 2 + (self.b + 0.7) ** 2


class SkRidge(Filter):
    alpha = search(1e-3, 1e3, log=True, default=1.0)

    def fit(self, x, y=None):
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.alpha).fit(x, y)

    def forward(self, x, state):
        return state.predict(x)


def _value(y_true: Any, y_pred: Any) -> float:
    return float(y_pred)


def _mse(y_true: Any, y_pred: Any) -> float:
    return float(np.mean((y_true - y_pred) ** 2))


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def overhead(n_trials: int, repeats: int) -> list[list[str]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10))
    y = x @ rng.normal(size=10) + rng.normal(scale=0.1, size=200)
    xt, yt, xv, yv = x[:150], y[:150], x[150:], y[150:]

    def raw_quadratic(trial: optuna.Trial) -> float:
        a = trial.suggest_float("quadratic.a", -5.0, 5.0)
        b = trial.suggest_float("quadratic.b", -5.0, 5.0)
        return (a - 1.3) ** 2 + (b + 0.7) ** 2

    def raw_ridge(trial: optuna.Trial) -> float:
        from sklearn.linear_model import Ridge

        alpha = trial.suggest_float("sk_ridge.alpha", 1e-3, 1e3, log=True)
        return _mse(yv, Ridge(alpha=alpha).fit(xt, yt).predict(xv))

    cases: list[tuple[str, Callable[..., float], Callable[[str, int], Study]]] = [
        (
            "quadratic (no work)",
            raw_quadratic,
            lambda s, seed: Study(
                Quadratic(),
                data=(np.zeros(1), None),
                metric=_value,
                direction="minimize",
                sampler=s,
                seed=seed,
                n_trials=n_trials,
            ),
        ),
        (
            "ridge 200x10",
            raw_ridge,
            lambda s, seed: Study(
                SkRidge(),
                data=(xt, yt, xv, yv),
                metric=_mse,
                direction="minimize",
                sampler=s,
                seed=seed,
                n_trials=n_trials,
            ),
        ),
    ]
    rows = []
    for label, raw, make in cases:
        for sampler in ("random", "tpe"):
            raw_times, soma_times = [], []
            for r in range(repeats):  # interleaved, best of `repeats`
                # CPU time of this process: steadier than wall time on a shared machine
                study = optuna.create_study(direction="minimize", sampler=_sampler(sampler, r))
                t0 = time.process_time()
                study.optimize(raw, n_trials=n_trials)
                raw_times.append(time.process_time() - t0)
                soma_study = make(sampler, r)
                t0 = time.process_time()
                soma_study.run()
                soma_times.append(time.process_time() - t0)
            raw_s, soma_s = min(raw_times) / n_trials, min(soma_times) / n_trials
            rows.append(
                [
                    label, sampler, str(n_trials), f"{raw_s * 1e3:.2f}", f"{soma_s * 1e3:.2f}",
                    f"{(soma_s - raw_s) * 1e6:+.0f}", f"{soma_s / raw_s:.2f}x",
                ]
            )  # fmt: skip
    return rows


# -- 2. digits pipeline search ---------------------------------------------------------------

CHECKPOINTS = (30, 60, 100)


def digits_soma(project: Any, splits: Any, seed: int, n_trials: int, cache: Cache) -> dict:
    from soma import Graph

    catalog = project.discover_filters().filters
    f = {name: info.cls for name, info in catalog.items()}
    graph = Graph.somatize(f["StandardScale"]() >> f["PCA"]() >> f["LogReg"]())
    names = list(graph.nodes)  # standard_scale, pca, log_reg
    space = {
        names[0]: [f["StandardScale"], f["MinMaxScale"], f["RobustScale"]],
        names[2]: [f["LogReg"], f["SVC"], f["KNN"]],
    }
    study = Study(
        graph, data=(*splits.train, *splits.valid), metric="accuracy", sampler="tpe",
        seed=seed, n_trials=n_trials, space=space, cache=cache,
    )  # fmt: skip
    marks: dict[int, tuple[float, float]] = {}
    t0 = time.perf_counter()

    def progress(event: Any) -> None:
        if event.done in CHECKPOINTS:
            marks[event.done] = (event.best_value, time.perf_counter() - t0)

    result = study.run(progress=progress)
    return {"marks": marks, "hit_rate": result.cache_hit_rate or 0.0}


def digits_optuna(splits: Any, seed: int, n_trials: int) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler
    from sklearn.svm import SVC

    (xt, yt), (xv, yv) = splits.train, splits.valid
    scalers = {"StandardScale": StandardScaler, "MinMaxScale": MinMaxScaler,
               "RobustScale": RobustScaler}  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        scaler = scalers[trial.suggest_categorical("scaler", list(scalers))]()
        pca = PCA(
            n_components=trial.suggest_int("pca.n_components", 2, 64),
            whiten=trial.suggest_categorical("pca.whiten", [False, True]),
            random_state=0,
        )
        kind = trial.suggest_categorical("model", ["LogReg", "SVC", "KNN"])
        if kind == "LogReg":
            model: Any = LogisticRegression(
                C=trial.suggest_float("LogReg.C", 1e-3, 1e3, log=True), max_iter=500
            )
        elif kind == "SVC":
            model = SVC(
                C=trial.suggest_float("SVC.C", 1e-2, 1e3, log=True),
                gamma=trial.suggest_float("SVC.gamma", 1e-4, 1.0, log=True),
            )
        else:
            model = KNeighborsClassifier(
                n_neighbors=trial.suggest_int("KNN.n_neighbors", 1, 30),
                weights=trial.suggest_categorical("KNN.weights", ["uniform", "distance"]),
            )
        pipe = Pipeline([("scaler", scaler), ("pca", pca), ("model", model)]).fit(xt, yt)
        return float(accuracy_score(yv, pipe.predict(xv)))

    marks: dict[int, tuple[float, float]] = {}
    t0 = time.perf_counter()

    def callback(study: optuna.Study, trial: Any) -> None:
        done = len(study.trials)
        if done in CHECKPOINTS:
            marks[done] = (study.best_value, time.perf_counter() - t0)

    sampler = optuna.samplers.TPESampler(seed=seed, group=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials, callbacks=[callback])
    return {"marks": marks, "hit_rate": None}


def digits(seeds: list[int], n_trials: int) -> list[list[str]]:
    import warnings

    from soma.project import init_project, load_project

    warnings.filterwarnings("ignore")
    root = Path(tempfile.mkdtemp(prefix="soma-bench-study-"))
    project = load_project(init_project(root / "digits", example="digits"))
    splits = project.load_data()
    caches: dict[int, Cache] = {}

    def warm(seed: int) -> Cache:
        return caches.setdefault(seed, Cache(memory_items=100_000))

    methods: dict[str, Callable[[int], dict]] = {
        "optuna (sklearn Pipeline)": lambda s: digits_optuna(splits, s, n_trials),
        "soma, cache off": lambda s: digits_soma(
            project, splits, s, n_trials, Cache(memory_items=0)
        ),
        "soma, shared cache": lambda s: digits_soma(project, splits, s, n_trials, warm(s)),
        "soma, same study again (warm cache)": lambda s: digits_soma(
            project, splits, s, n_trials, warm(s)
        ),
    }
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in seeds:
        for method, run in methods.items():
            runs[method].append(run(seed))
            console.print(f"  digits seed {seed}: {method} done", style="dim")
    base = {c: _median(runs["optuna (sklearn Pipeline)"], c, 1) for c in CHECKPOINTS}
    rows = []
    for method, results in runs.items():
        cells = [method]
        for c in CHECKPOINTS:
            best, seconds = _median(results, c, 0), _median(results, c, 1)
            if c > n_trials:
                continue
            if best is None:
                cells.append("-")
                continue
            ratio = f" ({seconds / base[c]:.2f}x)" if base[c] else ""
            cells.append(f"{best:.4f} / {seconds:.1f}s{ratio}")
        hit = [r["hit_rate"] for r in results if r["hit_rate"] is not None]
        cells.append(f"{statistics.median(hit):.0%}" if hit else "-")
        rows.append(cells)
    return rows


def _median(results: list[dict], checkpoint: int, index: int) -> float | None:
    values = [r["marks"][checkpoint][index] for r in results if checkpoint in r["marks"]]
    return statistics.median(values) if values else None


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer trials (~40 s)")
    size.add_argument("--full", action="store_true", help="3 seeds, more overhead trials")
    args = parser.parse_args()
    n_overhead, repeats, seeds, n_digits = 300, 5, [0], 100
    if args.quick:
        n_overhead, repeats, seeds, n_digits = 100, 3, [0], 30
    elif args.full:
        n_overhead, repeats, seeds, n_digits = 1000, 5, [0, 1, 2], 100
    from threadpoolctl import threadpool_limits

    # One BLAS thread: spinning BLAS workers would bill CPU time at random to either side.
    with threadpool_limits(1):
        _run(n_overhead, repeats, seeds, n_digits)


def _run(n_overhead: int, repeats: int, seeds: list[int], n_digits: int) -> None:
    console.print(f"[bold]1. per-trial cost, {n_overhead} trials, best of {repeats}[/]")
    _table(
        "Soma Study vs raw Optuna (same objective, same seeded sampler, in memory)",
        ["objective", "sampler", "trials", "optuna CPU ms/trial", "soma CPU ms/trial",
         "overhead us/trial", "ratio"],
        overhead(n_overhead, repeats),
    )  # fmt: skip
    console.print(f"[bold]2. digits: scaler x PCA x model, TPE, seeds {seeds}[/]")
    _table(
        "best validation accuracy / wall time (ratio to Optuna) after N trials; median of seeds",
        ["method", *[f"{c} trials" for c in CHECKPOINTS if c <= n_digits], "cache hits"],
        digits(seeds, n_digits),
    )


if __name__ == "__main__":
    main()
