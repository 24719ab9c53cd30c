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
    assert stored.trials[0].user_attrs["soma"]["params"] == first.trials[0].params


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


def test_regression_a_kb_opened_from_a_path_is_closed_after_the_run(tmp_path):
    # Study(kb=PATH) held its SQLite connection (and unsaved vector index) until garbage
    # collection; now it is open only while a run records.
    import sqlite3

    from soma.knowledge import HashingEmbedder, KnowledgeBase

    kb_path = tmp_path / "kb.sqlite"
    KnowledgeBase(kb_path, embedder=HashingEmbedder()).close()
    study = quadratic_study(tmp_path / "optuna.sqlite", n_trials=3, kb=kb_path, line="quad")
    study.run()
    assert study._recorder is not None and study._recorder.kb._closed
    study.run()  # a second run reopens it
    with sqlite3.connect(kb_path) as db:
        assert db.execute("select count(*) from experiments").fetchone()[0] == 6
