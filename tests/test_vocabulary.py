"""soma.vocabulary: the one Direction / Status / Action / Origin every part imports."""

from __future__ import annotations

import json
import sqlite3

import pydantic
import pytest

import soma
import soma_tools
from soma.errors import ValidationError
from soma.knowledge import Experiment, ResearchLine
from soma.vocabulary import ACTIONS, DIRECTIONS, ORIGINS, STATUSES, Action, Direction, Status


def test_members_are_their_strings() -> None:
    assert Direction.MAXIMIZE == "maximize" and Direction.MINIMIZE == "minimize"
    assert f"{Direction.MAXIMIZE}" == "maximize" and str(Status.OK) == "ok"
    # repr is the string's, so messages quoting a value with !r read as before
    assert f"{Direction.MINIMIZE!r}" == "'minimize'"
    assert json.dumps({"d": Direction.MAXIMIZE}) == '{"d": "maximize"}'
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (Status.PRUNED,))
    assert db.execute("SELECT x, typeof(x) FROM t").fetchone() == ("pruned", "text")
    assert DIRECTIONS == ("maximize", "minimize") and "running" in STATUSES
    assert "tune" in ACTIONS and "agent" in ORIGINS


def test_direction_better_sign_best() -> None:
    up, down = Direction.MAXIMIZE, Direction.MINIMIZE
    assert up.better(2.0, 1.0) and not up.better(1.0, 1.0) and not up.better(1.0, 2.0)
    assert down.better(1.0, 2.0) and not down.better(1.0, 1.0)
    assert (up.sign, down.sign) == (1.0, -1.0)
    assert up.best([0.2, 0.9, 0.5]) == 0.9 and down.best([0.2, 0.9, 0.5]) == 0.2
    rows = [("a", 3.0), ("b", 1.0), ("c", 1.0)]
    assert down.best(rows, key=lambda r: r[1]) == ("b", 1.0)  # the first among equals
    assert (up.arrow, down.arrow) == ("↑", "↓")
    with pytest.raises(ValueError):
        up.best([])


def test_parse_names_the_field_and_the_choices() -> None:
    assert Direction.parse("minimize") is Direction.MINIMIZE
    with pytest.raises(ValidationError, match=r"^metric\.direction: expected 'maximize' or"):
        Direction.parse("max", "metric.direction")
    with pytest.raises(ValidationError, match=r"^action: expected one of 'draft', 'improve'"):
        Action.parse("guess")


def test_pydantic_fields_take_the_strings_and_refuse_others() -> None:
    exp = Experiment(name="x", status="pruned", direction="minimize", action="tune", origin="cli")
    assert exp.status is Status.PRUNED and exp.direction is Direction.MINIMIZE
    assert exp.direction.better(0.1, 0.2)
    assert Experiment(name="y").origin == "python"  # defaults are members too
    assert exp.model_dump(mode="json")["status"] == "pruned"
    with pytest.raises(pydantic.ValidationError, match="direction"):
        ResearchLine(name="l", metric="m", direction="upward")


def test_one_definition_everywhere() -> None:
    import soma.knowledge._records as records

    assert soma.Direction is Direction is records.Direction is soma_tools._base.Direction
    assert soma.Status is records.Status is soma_tools._base.Status
