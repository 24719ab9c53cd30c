"""Optuna RDB storage: a study continued by name, grids resumed, mismatches refused."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from study_helpers import Quadratic, predicted_value

from soma import FloatRange, StudyError
from soma.study import Study, list_studies, load_result


def quadratic_study(storage, **kwargs):
    options = {"sampler": "random", "seed": 0, "name": "quad", "direction": "minimize"}
    options.update(kwargs)
    data = (np.zeros((2, 1)), None)
    return Study(Quadratic(), data=data, metric=predicted_value, storage=storage, **options)


def test_same_name_continues_the_study(tmp_path):
    db = tmp_path / "optuna.sqlite"
    first = quadratic_study(db, n_trials=4).run()
    assert [t.number for t in first.trials] == [0, 1, 2, 3]
    second = quadratic_study(db, n_trials=3, seed=1).run()
    assert second.new_trials == (4, 5, 6)
    assert len(second.trials) == 7 and second.counts["ok"] == 7
    assert second.best_value <= first.best_value
    # What optuna-dashboard sees: a plain Optuna study in that SQLite file.
    stored = optuna.load_study(study_name="quad", storage=f"sqlite:///{db}")
    assert len(stored.trials) == 7 and stored.metric_names == ["predicted_value"]
    assert stored.trials[0].system_attrs["soma"]["params"] == first.trials[0].params


def test_regression_continuing_with_the_same_seed_explores_new_points(tmp_path):
    # The sampler was rebuilt with the same seed on every run, so a continued study
    # replayed its first trials' parameters (all cache hits, nothing new learned).
    db = tmp_path / "optuna.sqlite"
    first = quadratic_study(db, n_trials=4).run()
    second = quadratic_study(db, n_trials=4).run()
    old = {tuple(sorted(t.params.items())) for t in first.trials}
    new = [tuple(sorted(second.trial(n).params.items())) for n in second.new_trials]
    assert not old & set(new)
    # ...and stays reproducible: the same continuation from the same start repeats itself.
    db2 = tmp_path / "again.sqlite"
    quadratic_study(db2, n_trials=4).run()
    again = quadratic_study(db2, n_trials=4).run()
    assert [tuple(sorted(again.trial(n).params.items())) for n in again.new_trials] == new


def test_timeout_stops_then_the_study_continues(tmp_path):
    db = tmp_path / "optuna.sqlite"
    stopped = quadratic_study(db, timeout=1e-9).run()  # starts one trial, then stops
    assert len(stopped.trials) == 1
    resumed = quadratic_study(db, n_trials=5).run()
    assert resumed.new_trials == (1, 2, 3, 4, 5) and resumed.counts["ok"] == 6


def test_grid_resumes_where_it_stopped(tmp_path):
    db = tmp_path / "optuna.sqlite"
    space = {"quadratic.a": [0.0, 1.0, 2.0], "quadratic.b": [-1.0, 0.0]}
    part = quadratic_study(db, sampler="grid", space=space, n_trials=4).run()
    assert len(part.trials) == 4
    rest = quadratic_study(db, sampler="grid", space=space, n_trials=50).run()
    assert len(rest.new_trials) == 2
    points = sorted((t.params["quadratic.a"], t.params["quadratic.b"]) for t in rest.trials)
    assert points == sorted((a, b) for a in (0.0, 1.0, 2.0) for b in (-1.0, 0.0))
    again = quadratic_study(db, sampler="grid", space=space).run()
    assert again.new_trials == () and len(again.trials) == 6


def test_direction_or_metric_mismatch_on_resume_is_refused(tmp_path):
    db = tmp_path / "optuna.sqlite"
    quadratic_study(db, n_trials=1).run()
    with pytest.raises(StudyError, match=r"already exists with direction\(s\) \['minimize'\]"):
        quadratic_study(db, n_trials=1, direction="maximize").run()


def test_load_and_list_stored_studies(tmp_path):
    db = tmp_path / "optuna.sqlite"
    quadratic_study(db, n_trials=3).run()
    loaded = load_result("quad", storage=db)
    assert loaded.counts["ok"] == 3 and loaded.metric_names == ("predicted_value",)
    assert [s["name"] for s in list_studies(storage=db)] == ["quad"]
    with pytest.raises(StudyError, match=r"no study named 'nope'.*known: quad"):
        load_result("nope", storage=db)


def test_project_folder_keeps_storage_and_cache_in_dot_soma(tmp_path):
    result = quadratic_study(None, project=tmp_path, n_trials=2).run()
    assert (tmp_path / ".soma" / "optuna.sqlite").is_file()
    assert (tmp_path / ".soma" / "cache").is_dir()
    assert result.storage == f"sqlite:///{tmp_path / '.soma' / 'optuna.sqlite'}"
    assert load_result("quad", project=tmp_path).counts["ok"] == 2


def test_stepped_float_round_trips_through_sqlite(tmp_path):
    db = tmp_path / "optuna.sqlite"
    space = {"quadratic.a": FloatRange(0.0, 0.3, step=0.1), "quadratic.b": -0.7}
    result = quadratic_study(db, sampler="grid", space=space).run()
    assert sorted(t.params["quadratic.a"] for t in result.trials) == [0.0, 0.1, 0.2, 0.3]


def test_interrupted_study_closes_its_running_trial_and_continues(tmp_path):
    db = tmp_path / "optuna.sqlite"
    calls = []

    def objective(graph):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return float(graph.forward(np.zeros((1, 1)))[0])

    study = Study(
        Quadratic(), objective=objective, metric="predicted_value", direction="minimize",
        sampler="random", seed=0,
        n_trials=10, name="quad", storage=db,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        study.run()
    stored = optuna.load_study(study_name="quad", storage=f"sqlite:///{db}")
    assert [t.state.name for t in stored.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    resumed = quadratic_study(db, n_trials=2, seed=5).run()
    assert len(resumed.trials) == 5 and resumed.counts == {
        "ok": 4, "pruned": 0, "failed": 1, "running": 0
    }  # fmt: skip
    assert "interrupted" in resumed.trials[2].error


def test_regression_a_kb_opened_from_a_path_is_closed_after_the_run(tmp_path, monkeypatch):
    # Study(kb=PATH) held its SQLite connection (and unsaved vector index) until garbage
    # collection; now it is open only while a run records.
    import sqlite3

    import soma.knowledge
    from soma.knowledge import HashingEmbedder, KnowledgeBase

    class HashingKB(KnowledgeBase):  # offline-fast: no MiniLM load for a path
        def __init__(self, path, embedder=None, **kwargs):
            super().__init__(path, embedder or HashingEmbedder(), **kwargs)

    monkeypatch.setattr(soma.knowledge, "KnowledgeBase", HashingKB)
    kb_path = tmp_path / "kb.sqlite"
    KnowledgeBase(kb_path, embedder=HashingEmbedder()).close()
    study = quadratic_study(tmp_path / "optuna.sqlite", n_trials=3, kb=kb_path, line="quad")
    study.run()
    assert study._recorder is not None and study._recorder.kb._closed
    study.run()  # a second run reopens it
    with sqlite3.connect(kb_path) as db:
        assert db.execute("select count(*) from experiments").fetchone()[0] == 6


GRID = {"quadratic.a": [0.0, 1.0, 2.0], "quadratic.b": [-1.0, 0.0]}


def grid_points(result):
    done = [t for t in result.trials if t.status == "ok"]
    return sorted((t.params["quadratic.a"], t.params["quadratic.b"]) for t in done)


def test_regression_an_interrupted_grid_point_is_run_again_on_resume(tmp_path):
    # The trial closed as failed by Ctrl-C counted as a grid point already run: the resumed
    # grid skipped it and never ran that configuration.
    db = tmp_path / "optuna.sqlite"
    calls = []

    def objective(graph):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return float(graph.forward(np.zeros((1, 1)))[0])

    study = Study(
        Quadratic(), objective=objective, metric="predicted_value", direction="minimize",
        sampler="grid", space=GRID, name="quad", storage=db,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        study.run()
    resumed = quadratic_study(db, sampler="grid", space=GRID).run()
    assert grid_points(resumed) == sorted((a, b) for a in (0.0, 1.0, 2.0) for b in (-1.0, 0.0))
    assert resumed.counts == {"ok": 6, "pruned": 0, "failed": 1, "running": 0}
    assert len(resumed.new_trials) == 4  # the interrupted point and the three never started


KILLED_RUN = """
import os, sys
import numpy as np
from study_helpers import Quadratic
from soma.study import Study

calls = []

def objective(graph):
    calls.append(1)
    if len(calls) == 3:
        os._exit(3)  # killed mid-trial: no Python cleanup runs
    return float(graph.forward(np.zeros((1, 1)))[0])

Study(Quadratic(), objective=objective, metric="predicted_value", direction="minimize",
      sampler="grid", space={"quadratic.a": [0.0, 1.0, 2.0], "quadratic.b": [-1.0, 0.0]},
      name="quad", storage=sys.argv[1]).run()
"""


def test_regression_a_killed_run_is_resumed_without_trials_left_running(tmp_path):
    # A run killed outright (kill -9, a lost session) left its trial RUNNING for good: the
    # result showed it running forever and a resumed grid never ran that point.
    import os
    import subprocess
    import sys
    from pathlib import Path

    db = tmp_path / "optuna.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(db)], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    stored = optuna.load_study(study_name="quad", storage=f"sqlite:///{db}")
    assert [t.state.name for t in stored.trials[:3]] == ["COMPLETE", "COMPLETE", "RUNNING"]

    resumed = quadratic_study(db, sampler="grid", space=GRID).run()
    assert resumed.counts == {"ok": 6, "pruned": 0, "failed": 1, "running": 0}
    killed = resumed.trial(2)
    assert killed.status == "failed" and "ended before the trial finished" in killed.error
    assert grid_points(resumed) == sorted((a, b) for a in (0.0, 1.0, 2.0) for b in (-1.0, 0.0))


def test_a_trial_still_running_in_a_live_process_is_left_alone(tmp_path):
    from soma.study._optuna import claim_trial

    db = tmp_path / "optuna.sqlite"
    quadratic_study(db, n_trials=1).run()
    other = optuna.load_study(study_name="quad", storage=f"sqlite:///{db}")
    running = other.ask()
    claim_trial(running)  # owned by this (live) process, as if by a concurrent run
    unowned = other.ask()  # a trial started by plain Optuna: nothing says who runs it
    result = quadratic_study(db, n_trials=1).run()
    assert result.trial(running.number).status == "running"
    assert result.trial(unowned.number).status == "running"
    assert result.counts["ok"] == 2


def test_optuna_dashboard_opens_the_projects_storage(tmp_path):
    """Runs where optuna-dashboard is installed (it is not a Soma dependency)."""
    import io
    import json
    import sys

    dashboard = pytest.importorskip("optuna_dashboard")
    quadratic_study(None, project=tmp_path, n_trials=3).run()
    Study(
        Quadratic(), objective=lambda g: (g.params["quadratic.a"] ** 2, g.params["quadratic.b"]),
        metric=["f", "g"], direction=["minimize", "maximize"], n_trials=3, seed=0,
        name="multi", project=tmp_path,
    ).run()  # fmt: skip
    app = dashboard.wsgi(f"sqlite:///{tmp_path / '.soma' / 'optuna.sqlite'}")

    def get(path):
        status = []
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
        }  # fmt: skip
        body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
        assert status[0].startswith("200"), (path, status, body[:500])
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    assert {s["study_name"] for s in studies} == {"quad", "multi"}
    for s in studies:
        trials = get(f"/api/studies/{s['study_id']}")["trials"]
        assert [t["state"] for t in trials] == ["Complete"] * 3
