"""Bad input is refused at the boundary, naming the field and what was expected."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from study_helpers import Curve, Quadratic, Ridge, Scale, predicted_value

from soma import Graph, ValidationError
from soma.study import Study

DATA = (np.zeros((3, 2)), np.zeros(3), np.zeros((2, 2)), np.zeros(2))


def make(**kwargs):
    options = {"data": DATA, "metric": "mse", "n_trials": 2}
    options.update(kwargs)
    return Study(Scale() >> Ridge(), **options)


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        (
            {"direction": "maximise"},
            "direction",
            "expected 'maximize' or 'minimize', got 'maximise'",
        ),
        ({"direction": "maximize"}, "direction", "'mse' is better when lower"),
        ({"direction": ["minimize", "minimize"]}, "direction", "expected 1 direction"),
        (
            {"metric": ["mse", "mae"], "direction": ["minimize", "maximise"]},
            "direction[1]",
            "expected 'maximize' or 'minimize', got 'maximise'",
        ),
        ({"direction": "MAXIMIZE"}, "direction", "got 'MAXIMIZE'"),
        ({"direction": 1}, "direction", "expected 'maximize', 'minimize' or a list"),
        ({"sampler": "bayes"}, "sampler", "expected one of tpe, random, grid"),
        ({"pruner": "mediam"}, "pruner", "expected 'median', 'percentile'"),
        ({"pruner": "percentile:150"}, "pruner", "percentile must be in [0, 100]"),
        ({"n_trials": 0}, "n_trials", "expected an int >= 1, got 0"),
        ({"n_trials": None}, "n_trials", "give n_trials or a timeout"),
        ({"n_jobs": 0}, "n_jobs", "expected an int >= 1"),
        ({"timeout": -1}, "timeout", "expected seconds > 0"),
        ({"seed": 1.5}, "seed", "expected an int"),
        ({"metric": "accuracyy"}, "metric", "unknown metric 'accuracyy'"),
        ({"metric": None}, "metric", "expected a metric"),
        ({"data": (1, 2, 3)}, "data", "expected (x_train, y_train, x_valid, y_valid)"),
        ({"space": {"ridge.alpah": 1.0}}, "space['ridge.alpah']", "has no parameter 'alpah'"),
        ({"space": {"lasso.alpha": 1.0}}, "space['lasso.alpha']", "no node 'lasso'"),
        ({"space": {"ridge.alpha": -1.0}}, "space['ridge.alpha']", "must be a float in"),
        ({"space": {"ridge": []}}, "space['ridge']", "non-empty list of filters"),
        ({"space": {"ridge": [Ridge, 3]}}, "space['ridge'][1]", "expected a Filter"),
        (
            {"space": {"ridge": [Ridge], "ridge.alpha": 1.0}},
            "space['ridge.alpha']",
            "'ridge' is a slot",
        ),
        ({"cache": "yes"}, "cache", "expected a soma.Cache"),
        ({"kb": 42}, "kb", "expected a KnowledgeBase"),
        ({"objective": lambda g: 1.0}, "data", "an objective receives the graph"),
    ],
)
def test_bad_input_names_the_field(kwargs, field, text):
    with pytest.raises(ValidationError) as info:
        make(**kwargs)
    assert info.value.field == field
    assert text in str(info.value)


@pytest.mark.parametrize("pruner", ["median", "percentile", optuna.pruners.MedianPruner()])
def test_pruning_several_objectives_is_refused(pruner):
    with pytest.raises(ValidationError, match="single-objective studies only") as info:
        make(metric=["mse", "mae"], pruner=pruner)
    assert info.value.field == "pruner"
    with pytest.raises(ValidationError, match="single-objective studies only"):
        Study(
            Quadratic(), objective=lambda g: (1.0, 2.0), direction=["minimize", "maximize"],
            pruner=pruner, n_trials=1,
        )  # fmt: skip


def test_a_metric_needs_one_output():
    g = Graph()
    g.node(Scale(), "a")
    g.node(Scale(), "b")
    with pytest.raises(ValidationError, match="2 leaves"):
        Study(g, data=DATA, metric="mse", n_trials=1)


def test_a_graph_factory_takes_no_arguments():
    with pytest.raises(ValidationError, match="takes no arguments"):
        Study(lambda params: Ridge(), data=DATA, metric="mse", n_trials=1)
    study = Study(lambda: Scale() >> Ridge(), data=DATA, metric="mse", n_trials=1)
    assert set(study.space) == {"scale.center", "ridge.alpha"}


def test_objective_returning_the_wrong_count_fails_the_trial():
    study = Study(Quadratic(), objective=lambda g: (1.0, 2.0), direction="minimize", n_trials=1)
    with pytest.raises(Exception, match="objective returned 2 value"):
        study.run()


def test_report_validates_its_arguments():
    from soma.study import report

    calls = []

    def objective(graph):
        with pytest.raises(ValidationError, match="step"):
            report(1.0, -1)
        with pytest.raises(ValidationError, match="value"):
            report("high", 0)
        calls.append(1)
        return 0.0

    Study(Curve(), objective=objective, n_trials=1).run()
    assert calls == [1]


def test_direction_defaults(unit_data=None):
    assert make().directions == ("minimize",)  # mse's own
    study = Study(Quadratic(), data=DATA, metric=predicted_value, n_trials=1)
    assert study.directions == ("maximize",)  # callables: maximize unless told


def test_nothing_is_created_before_validation_passes(tmp_path):
    with pytest.raises(ValidationError):
        make(project=tmp_path, space={"ridge.alpha": "big"})
    assert not (tmp_path / ".soma").exists()
    make(project=tmp_path)
    assert (tmp_path / ".soma" / "cache").is_dir()
