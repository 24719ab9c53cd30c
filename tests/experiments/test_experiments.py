"""soma.experiments: the one Splits, MetricSpec, evaluate, build_graph and lifecycle."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from soma import Cache, Filter, Graph
from soma.errors import ExecutionError, ValidationError
from soma.experiments import (
    EvaluationError,
    ExperimentRun,
    MetricFailed,
    MetricSpec,
    Splits,
    build_graph,
    data_fingerprint,
    evaluate,
    record_finished,
    splits_from_data,
)
from soma.fingerprint import hash_value


class Mean(Filter):
    def fit(self, x, y):
        return float(np.mean(y))

    def forward(self, x, state):
        return np.full(len(x), state)


class Boom(Filter):
    def forward(self, x, state):
        raise RuntimeError("boom")


def _mse(y_true, y_pred):
    return float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))


MSE = MetricSpec("mse", "minimize", _mse)
X, Y = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 3.0])
XV, YV = np.ones((2, 2)), np.array([2.0, 4.0])


def test_one_fingerprint_recipe_for_every_form_of_the_same_data():
    expected = hash_value({"train": (X, Y), "valid": (XV, YV), "test": None})
    assert data_fingerprint((X, Y), (XV, YV), None) == expected
    assert splits_from_data((X, Y, XV, YV)).fingerprint == expected
    assert splits_from_data({"train": (X, Y), "valid": [XV, YV]}).fingerprint == expected
    assert Splits((X, Y), (XV, YV)).fingerprint == expected
    assert Splits((X, Y), (XV, YV)).with_fingerprint("ab" * 32).fingerprint == "ab" * 32


def test_splits_keep_the_old_field_names_and_a_pair_means_no_validation():
    splits = splits_from_data((X, Y))
    assert not splits.has_validation and not splits.has_valid
    assert splits.x_valid is splits.x_train is X and splits.y_train is Y


def test_splits_from_data_names_the_bad_field():
    with pytest.raises(ValidationError, match=r"data\.valid"):
        splits_from_data({"train": (X, Y), "valid": X})
    with pytest.raises(ValidationError, match="data: expected"):
        splits_from_data(42)


def test_metric_spec_scores_finite_numbers_only():
    assert MSE.better(0.1, 0.2) and not MSE.better(0.2, 0.1)
    nan = MetricSpec("nan", "maximize", lambda a, b: math.nan)
    with pytest.raises(MetricFailed, match="expected a finite number"):
        nan.score(YV, YV)
    raises = MetricSpec("bad", "maximize", lambda a, b: 1 / 0)
    with pytest.raises(MetricFailed, match="'bad' raised ZeroDivisionError"):
        raises.score(YV, YV)


def test_evaluate_fits_on_train_scores_valid_and_keeps_the_predictions():
    graph = Graph.somatize(Mean(), cache=Cache())
    first = evaluate(graph, Splits((X, Y), (XV, YV)), [MSE])
    assert first.value == pytest.approx(((2 - 2) ** 2 + (4 - 2) ** 2) / 2)
    assert first.primary == "mse" and list(first.prediction) == [2.0, 2.0]
    assert first.cache_misses > 0 and first.cache_hits == 0
    assert set(first.cache_keys) == {"fit/mean", "forward/mean"}
    assert list(first.per_sample_losses()) == [0.0, 4.0]
    again = evaluate(Graph.somatize(Mean(), cache=graph.cache), Splits((X, Y), (XV, YV)), [MSE])
    assert again.cache_misses == 0 and again.cache_hits > 0


def test_per_sample_losses_of_labels_are_mistakes():
    graph = Graph.somatize(Mean())
    evaluation = evaluate(graph, Splits((X, np.array([1, 1, 1])), (XV, np.array([1, 0]))), [MSE])
    assert list(evaluation.per_sample_losses()) == [0.0, 1.0]


def test_evaluate_names_the_stage_and_keeps_the_node_error():
    with pytest.raises(EvaluationError) as info:
        evaluate(Graph.somatize(Boom()), Splits((X, Y), (XV, YV)), [MSE])
    assert info.value.stage == "forward" and isinstance(info.value.cause, ExecutionError)
    assert info.value.cause.node == "boom" and len(info.value.reports) == 2
    nan = MetricSpec("nan", "maximize", lambda a, b: math.nan)
    with pytest.raises(EvaluationError) as info:
        evaluate(Graph.somatize(Mean()), Splits((X, Y), (XV, YV)), [nan])
    assert info.value.stage == "metric" and isinstance(info.value.cause, MetricFailed)


class _Parser:
    """A stand-in project: parse_spec knows one spec."""

    def parse_spec(self, spec):
        from soma.errors import ProjectError

        if spec != "Ridge":
            raise ProjectError(f"unknown filter {spec!r}")
        return _Ridge()


class _Ridge(Filter):
    alpha = 1.0
    random_state = 0

    def forward(self, x, state):
        return x


def test_build_graph_reports_the_failing_field():
    graph = build_graph("Ridge", project=_Parser(), params={"_ridge.alpha": 2.0}, seed=7)
    assert graph.params == {"_ridge.alpha": 2.0, "_ridge.random_state": 7}
    kept = build_graph("Ridge", project=_Parser(), params={"_ridge.random_state": 1}, seed=7)
    assert kept.params["_ridge.random_state"] == 1
    for kwargs, field in (
        ({"spec": "Nope"}, "spec"),
        ({"spec": "Ridge", "params": {"_ridge.beta": 1}}, "params"),
        ({"spec": "Ridge", "seed": "7"}, "seed"),
    ):
        with pytest.raises(ValidationError) as info:
            build_graph(project=_Parser(), **kwargs)
        assert info.value.field == field


def test_lifecycle_running_then_ok_and_an_idempotent_replay(tmp_path: Path):
    from soma.knowledge import Experiment, KnowledgeBase

    kb = KnowledgeBase(tmp_path / "kb.sqlite", embedder="hashing")
    try:
        kb.create_line("l", metric="mse", direction="minimize")
        exp = Experiment(name="e", line="l", primary_metric="mse", idempotency_key="k1")
        run = ExperimentRun.start(kb, exp)
        assert run.replayed is None and kb.get(run.id).status == "running"
        run.succeed({"mse": 0.5}, duration_s=1.0)
        assert kb.get(run.id).status == "ok"
        again = ExperimentRun.start(kb, exp.model_copy(update={"id": "other"}))
        assert again.id == run.id and again.replayed is not None
        failed = ExperimentRun.start(kb, Experiment(name="f", line="l", idempotency_key="k2"))
        failed.fail("node 'x' failed")
        assert kb.get(failed.id).status == "failed"
        with pytest.raises(ValidationError, match="status"):
            record_finished(kb, Experiment(name="g", line="l", status="running"))
    finally:
        kb.close()
