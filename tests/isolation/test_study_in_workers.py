"""Issue 18: run_study's trials run in worker processes, with their pruner and limits.

A filter that calls ``soma.study.report`` in a worker still reaches the trial's pruner in
the parent (trials get pruned); a trial whose filter calls ``sys.exit`` or passes the trial
time limit fails on its own, naming the node, and the study goes on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import soma_tools as T

REPORTS = '''
import sys
import time

from soma import Filter, search
from soma.study import report


class Steps(Filter):
    """Reports an intermediate value per step; a worse offset reports worse values."""

    offset = search(0.0, 1.0)

    def fit(self, x, y=None):
        for step in range(4):
            report(1.0 - self.offset - 0.01 * step, step)
        return None

    def forward(self, x, state=None):
        return x


class Moody(Filter):
    """Exits or spins for some of its values."""

    mood = search(choices=["fine", "exit", "spin"])

    def fit(self, x, y=None):
        if self.mood == "exit":
            sys.exit(2)
        if self.mood == "spin":
            while True:
                time.sleep(0.01)
        return None

    def forward(self, x, state=None):
        return x
'''


@pytest.fixture
def ctx(tmp_path: Path) -> T.ToolContext:
    from soma.project import init_project

    root = Path(init_project(tmp_path / "digits", example="digits"))
    (root / "filters" / "reports.py").write_text(REPORTS)
    with open(root / "soma.toml", "a") as f:
        f.write("\n[limits]\nworkers = 1\n")
    context = T.ToolContext(root, embedder="hashing")
    yield context
    context.close()


def test_reports_from_a_worker_reach_the_pruner(ctx: T.ToolContext) -> None:
    out = T.run_study(
        ctx,
        T.RunStudyInput(
            spec="Steps() >> LogReg(C=0.1)",
            n_trials=8,
            sampler="random",
            pruner="median",
            seed=3,
        ),
    )
    assert ctx.workers is not None and ctx.workers.starts == 1  # one worker, reused
    assert out.trials_by_status.get("pruned", 0) >= 1, out.trials_by_status
    assert out.trials_by_status.get("ok", 0) >= 1


def test_a_trial_that_exits_or_spins_fails_alone(ctx: T.ToolContext) -> None:
    out = T.run_study(
        ctx,
        T.RunStudyInput(
            spec="Moody() >> LogReg(C=0.1)",
            space={
                "moody.mood": {"choices": ["fine", "exit", "spin"]},
                "log_reg.C": {"choices": [0.1]},
            },
            sampler="grid",
            n_trials=3,
            trial_timeout_s=10,
        ),
    )
    assert out.trials_by_status == {"ok": 1, "failed": 2}, out.trials_by_status
    errors = [e.error for e in ctx.kb.experiments() if e.status == "failed"]
    assert any("node 'moody' failed during fit" in e and "SystemExit(2)" in e for e in errors)
    assert any("time limit of 10 s" in e for e in errors), errors


def test_a_cancelled_study_starts_no_more_trials(ctx: T.ToolContext) -> None:
    import threading

    from soma.execution import cancel_scope

    cancel = threading.Event()
    threading.Timer(8.0, cancel.set).start()  # while trial 0 spins: the worker is killed
    with cancel_scope(cancel), pytest.raises(T.ToolError, match="cancelled"):
        T.run_study(
            ctx,
            T.RunStudyInput(
                spec="Moody() >> LogReg(C=0.1)",
                space={"moody.mood": {"choices": ["spin"]}, "log_reg.C": {"choices": [0.1]}},
                sampler="random",
                n_trials=5,
                name="cancelled",
            ),
        )
    assert [e.status for e in ctx.kb.experiments()] == ["failed"]  # no trial after the cancel
