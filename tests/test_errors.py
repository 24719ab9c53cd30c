"""Errors keep their fields across pickling (they cross process boundaries)."""

from __future__ import annotations

import pickle

import cloudpickle

from soma.errors import ExecutionError, ValidationError


def test_execution_error_survives_pickle_with_node_phase_and_cause() -> None:
    error = ExecutionError("scale", "fit", ZeroDivisionError("division by zero"))
    for dumps in (pickle.dumps, cloudpickle.dumps):
        back = pickle.loads(dumps(error))
        assert isinstance(back, ExecutionError)
        assert back.node == "scale"
        assert back.phase == "fit"
        assert isinstance(back.cause, ZeroDivisionError)
        assert str(back) == str(error)


def test_validation_error_survives_pickle_with_field() -> None:
    error = ValidationError("params.alpha", "expected a number, got 'x'")
    back = pickle.loads(pickle.dumps(error))
    assert back.field == "params.alpha"
    assert str(back) == "params.alpha: expected a number, got 'x'"
