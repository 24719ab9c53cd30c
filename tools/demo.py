"""``make demo``: Soma's main job — the autonomous agent researching the digits example.

It scaffolds ``./demo/`` afresh (``soma init demo --example digits``: scikit-learn's bundled
digits, no download), then runs, offline, with live progress::

    soma agent run "maximize validation accuracy" --max-experiments 20 --project demo

and prints where the report is. Afterwards: ``soma agent show RUN --project demo`` for the
decision journal, ``soma tui --project demo`` for the dashboard.

This file is also a pipeline file (``soma run tools/demo.py`` runs the hand-written pipeline
at the bottom on the same data); the demo itself does not use it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from soma import Filter, search

GOAL = "maximize validation accuracy"
DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"


def main(folder: Path = DEMO_DIR, max_experiments: int = 20, embedder: str = "default") -> int:
    """Scaffold ``folder`` afresh and run the agent on it; 0 when the run wrote its report.

    The parameters exist for the test suite (a smaller run, the fast embedder); ``make demo``
    uses the defaults.
    """
    from rich.console import Console

    from soma.cli import _register, app
    from soma.knowledge import KnowledgeBase
    from soma.project import init_project, load_project
    from soma_agent.run_control import list_runs

    console = Console()
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    init_project(folder, example="digits")
    console.rule("Soma demo: the research agent on 8x8 handwritten digits")
    console.print(
        f"Project scaffolded in [bold]{folder}[/] (soma.toml, data.py, filters/).\n"
        f'Running: soma agent run "{GOAL}" --max-experiments {max_experiments} '
        f"--project {folder.name}\n",
        highlight=False,
    )
    _register()
    argv = ["agent", "run", GOAL, "--max-experiments", str(max_experiments)]
    argv += ["--project", str(folder), "--embedder", embedder]
    try:
        app(argv, standalone_mode=False)
    except SystemExit as exc:  # typer exits non-zero when the run failed
        if exc.code:
            return int(exc.code)
    project = load_project(folder)
    kb = KnowledgeBase(project.kb_path, embedder="hashing")  # reading only: no model load
    runs = list_runs(kb)
    if not runs or not runs[-1].report_path:
        console.print("[bold red]The run wrote no report.[/]")
        return 1
    run = runs[-1]
    console.rule("Done")
    console.print(
        f"Best validation accuracy [bold]{run.best_value:.4f}[/] by experiment "
        f"{run.best_experiment_id} after {run.n_experiments} experiments.\n"
        f"Report: [bold]{run.report_path}[/]\n"
        f"Decision journal: soma agent show {run.run_id} --project {folder.name}\n"
        f"Dashboard: soma tui --project {folder.name}",
        highlight=False,
    )
    return 0


# -- the pipeline file part (used by `soma run tools/demo.py`) ------------------------------


class Standardize(Filter):
    """Zero mean, unit variance per feature (constant features stay 0)."""

    def fit(self, x, y=None):
        return x.mean(axis=0), x.std(axis=0) + 1e-9

    def forward(self, x, state):
        mean, std = state
        return (x - mean) / std


class PCA(Filter):
    n_components = search(2, 64, default=24)

    def fit(self, x, y=None):
        from sklearn.decomposition import PCA as SkPCA

        return SkPCA(n_components=self.n_components, random_state=0).fit(x)

    def forward(self, x, state):
        return state.transform(x)


class PixelStats(Filter):
    """Per-image ink statistics: mean, spread and the share of bright pixels."""

    def forward(self, x, state):
        return np.column_stack([x.mean(axis=1), x.std(axis=1), (x > 0.5).mean(axis=1)])


class Concat(Filter):
    def forward(self, left, right, state):
        return np.hstack([left, right])


class LogReg(Filter):
    C = search(1e-3, 1e3, log=True, default=1.0)

    def fit(self, x, y=None):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=2000).fit(x, y)

    def forward(self, x, state):
        return state.predict(x)


pipeline = Standardize() >> (PCA(n_components=24) | PixelStats()) >> Concat() >> LogReg(C=1.0)
direction = "maximize"


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return x_train, y_train, x_valid, y_valid


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


metric = accuracy


if __name__ == "__main__":
    sys.exit(main())
