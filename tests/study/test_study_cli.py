"""``soma study run|show|list`` and ``soma pbt run`` on pipeline files."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from typer.testing import CliRunner

from soma.cli import _register, app

PIPELINE = textwrap.dedent(
    """
    import numpy as np
    from soma import Filter, search
    from soma.pbt import IterativeFilter


    class Shift(Filter):
        offset = search(-4.0, 4.0, step=0.5, default=0.0)

        def forward(self, x, state):
            return x[:, 0] + self.offset


    class Mean(IterativeFilter):
        lr = search(0.01, 1.0, log=True, default=0.1)

        def init_state(self, x, y=None):
            return 0.0

        def partial_fit(self, x, y, state, steps):
            for _ in range(steps):
                state += self.lr * (float(np.mean(y)) - state)
            return state

        def forward(self, x, state):
            return np.full(len(x), state)


    pipeline = Shift()
    iterative = Mean()
    direction = "minimize"


    def data():
        x = np.zeros((6, 1))
        return x, np.full(6, 1.5), x, np.full(6, 1.5)


    def metric(y_true, y_pred):
        return float(np.mean((y_true - y_pred) ** 2))
    """
)


@pytest.fixture
def runner():
    _register()
    return CliRunner()


@pytest.fixture
def pipeline(tmp_path):
    path = tmp_path / "shift.py"
    path.write_text(PIPELINE, encoding="utf-8")
    return path


def test_study_run_then_show_and_list(runner, pipeline, tmp_path):
    args = ["study", "run", str(pipeline), "--trials", "6", "--sampler", "random", "--seed", "0"]
    args += ["--project", str(tmp_path), "--no-kb", "--json"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["name"] == "shift-pipeline" and result["metrics"] == ["metric"]
    assert result["counts"]["ok"] == 6 and result["directions"] == ["minimize"]
    again = json.loads(runner.invoke(app, args).stdout)  # same name: continues
    assert again["counts"]["ok"] == 12 and again["new_trials"] == list(range(6, 12))

    shown = runner.invoke(app, ["study", "show", "shift-pipeline", "--project", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "12 trials" in shown.output and "shift.offset" in shown.output
    assert "optuna-dashboard sqlite:///" in shown.output
    listed = json.loads(
        runner.invoke(app, ["study", "list", "--project", str(tmp_path), "--json"]).stdout
    )
    assert [(s["name"], s["n_trials"]) for s in listed] == [("shift-pipeline", 12)]


def test_study_run_grid_with_builtin_metric_and_progress(runner, pipeline, tmp_path):
    out = runner.invoke(
        app,
        ["study", "run", str(pipeline), "--metric", "mae", "--sampler", "grid",
         "--project", str(tmp_path), "--no-kb", "--name", "grid"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "17/17" in out.output  # the progress bar: every grid point of [-4, 4] step 0.5
    assert "best mae=0 (trial" in out.output and "shift.offset=1.5" in out.output
    assert "cache hit rate 50%" in out.output  # valid x == train x: its forward is a hit


def test_study_run_records_into_the_projects_kb(runner, pipeline, tmp_path, monkeypatch):
    import soma.knowledge
    from soma.knowledge import HashingEmbedder, KnowledgeBase

    class HashingKB(KnowledgeBase):  # keep the test offline-fast: hashing instead of MiniLM
        def __init__(self, path, embedder=None, **kwargs):
            super().__init__(path, embedder or HashingEmbedder(), **kwargs)

    monkeypatch.setattr(soma.knowledge, "KnowledgeBase", HashingKB)
    out = runner.invoke(
        app, ["study", "run", str(pipeline), "-n", "3", "--project", str(tmp_path), "--json"]
    )
    assert out.exit_code == 0, out.output
    kb = KnowledgeBase(tmp_path / ".soma" / "kb.sqlite", embedder=HashingEmbedder())
    assert len(kb.experiments(line="shift-pipeline", origin="study")) == 3


def test_study_run_errors_are_readable(runner, pipeline, tmp_path):
    bad = runner.invoke(app, ["study", "run", str(pipeline), "--direction", "maximise"])
    assert bad.exit_code == 1 and "direction" in bad.output and "maximise" in bad.output
    missing = runner.invoke(app, ["study", "show", "nope", "--project", str(tmp_path)])
    assert missing.exit_code == 1 and "no study named 'nope'" in missing.output


def test_pbt_run(runner, pipeline, tmp_path):
    out = runner.invoke(
        app,
        ["pbt", "run", f"{pipeline}:iterative", "--population", "4", "--rounds", "3",
         "--seed", "0", "--project", str(tmp_path), "--no-kb", "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["node"] == "mean" and len(result["population"]) == 4
    assert len(result["schedule"]) == 3 and result["best_value"] < 1.0
    text = runner.invoke(
        app, ["pbt", "run", f"{pipeline}:iterative", "--rounds", "2", "--no-kb",
              "--project", str(tmp_path)],
    )  # fmt: skip
    assert text.exit_code == 0 and "best schedule: r0:" in text.output
    not_iterative = runner.invoke(app, ["pbt", "run", str(pipeline), "--no-kb"])
    assert not_iterative.exit_code == 1 and "IterativeFilter" in not_iterative.output


CURVES = textwrap.dedent(
    """
    import numpy as np
    from soma import Filter, search
    from soma.study import report


    class Curve(Filter):
        quality = search(0.0, 1.0, default=0.5)

        def fit(self, x, y=None):
            for step in range(6):
                report((1 - self.quality) + 0.7 ** (step + 1), step)  # a loss curve
            return (1 - self.quality) + 0.7**6

        def forward(self, x, state):
            return np.full(len(x), state)


    pipeline = Curve()


    def data():
        x = np.zeros((4, 1))
        return x, np.zeros(4)


    def metric(y_true, y_pred):
        return float(np.mean(y_pred))
    """
)


def test_study_run_with_the_median_pruner(runner, tmp_path):
    path = tmp_path / "curves.py"
    path.write_text(CURVES, encoding="utf-8")
    args = ["study", "run", f"{path}:pipeline", "--metric", "loss", "--direction", "minimize",
            "--trials", "14", "--sampler", "tpe", "--pruner", "median", "--seed", "0",
            "--project", str(tmp_path), "--no-kb"]  # fmt: skip
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["metrics"] == ["loss"] and result["directions"] == ["minimize"]
    counts = result["counts"]
    assert counts["pruned"] >= 3 and counts["ok"] + counts["pruned"] == 14, counts
    quality = {t["number"]: t["params"]["curve.quality"] for t in result["trials"]}
    best = result["best_trial"]
    pruned = [t["number"] for t in result["trials"] if t["status"] == "pruned"]
    assert all(quality[n] < quality[best] for n in pruned)
    # the live bar (on stderr with --json): trial n/N and the best value so far
    bar = re.search(r"trials .*? 14/14 best ([-\d.e]+)", out.stderr)
    assert bar, out.stderr
    assert bar.group(1) == f"{result['best_value']:.6g}"
