"""The metric-condition language: parsing, errors, and SQL agreeing with Python."""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.errors import ValidationError
from soma.knowledge import parse_where


@pytest.mark.parametrize(
    ("text", "metrics", "expected"),
    [
        ("accuracy > 0.9", {"accuracy": 0.95}, True),
        ("accuracy>0.9", {"accuracy": 0.9}, False),
        ("accuracy >= 0.9", {"accuracy": 0.9}, True),
        ("accuracy = 0.9", {"accuracy": 0.9}, True),
        ("accuracy != 0.9", {"accuracy": 0.9}, False),
        ("loss < -0.5", {"loss": -1.0}, True),
        ("loss < 1e-3", {"loss": 0.0005}, True),
        ("0.8 < accuracy <= 0.9", {"accuracy": 0.85}, True),
        ("0.8 < accuracy <= 0.9", {"accuracy": 0.95}, False),
        ("0.9 < accuracy", {"accuracy": 0.95}, True),
        ("accuracy > 0.9 AND loss <= 0.3", {"accuracy": 0.95, "loss": 0.3}, True),
        ("accuracy > 0.9 or loss <= 0.3", {"accuracy": 0.5, "loss": 0.2}, True),
        ("not (accuracy > 0.9 or loss < 0.1)", {"accuracy": 0.5, "loss": 0.2}, True),
        ("val/loss < 0.3 and f1-macro > 0.5", {"val/loss": 0.2, "f1-macro": 0.6}, True),
        ('"val loss" < 0.3', {"val loss": 0.2}, True),
        ("metrics.accuracy > 0.5", {"accuracy": 0.6}, True),
        ("accuracy > 0.9", {}, False),  # missing: unknown
        ("not accuracy > 0.9", {}, False),  # not unknown: still unknown
        ("accuracy > 0.9 or loss < 1", {"loss": 0.5}, True),  # unknown or true: true
    ],
)
def test_conditions(text: str, metrics: dict[str, float], expected: bool) -> None:
    cond = parse_where(text)
    assert cond.matches(metrics) is expected
    assert _sql_matches(text, metrics, {}) is expected


def test_params_compare_only_numbers() -> None:
    cond = parse_where("params.lr < 0.1 and params.depth >= 3")
    assert cond.matches({}, {"lr": 0.01, "depth": 3})
    assert not cond.matches({}, {"lr": "0.01", "depth": 3})  # text is not a number
    assert not cond.matches({}, {"lr": True, "depth": 3})
    assert _sql_matches("params.lr < 0.1", {}, {"lr": 0.01}) is True
    assert _sql_matches("params.lr < 0.1", {}, {"lr": "tiny"}) is False
    assert _sql_matches("params.flag > 0", {}, {"flag": True}) is False
    assert cond.names() == [("params", "lr"), ("params", "depth")]


def test_nothing_is_executed() -> None:
    for text in ("__import__('os').system('true') > 1", "accuracy > 0.9; DROP TABLE x"):
        with pytest.raises(ValidationError) as info:
            parse_where(text)
        assert info.value.field == "where"
    # A hostile name is a bound parameter, never SQL text.
    sql, params = parse_where("`x') OR 1=1 --` > 0").to_sql()
    assert "OR 1=1" not in sql and any("OR 1=1" in str(p) for p in params)


def _sql_matches(text: str, metrics: dict[str, object], params: dict[str, object]) -> bool:
    sql, args = parse_where(text).to_sql()
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE experiments (metrics TEXT, params TEXT)")
    conn.execute("INSERT INTO experiments VALUES (?, ?)", [json.dumps(metrics), json.dumps(params)])
    found = conn.execute(f"SELECT count(*) FROM experiments WHERE {sql}", args).fetchone()[0]
    conn.close()
    return found == 1


_names = st.sampled_from(["a", "b", "c"])
_ops = st.sampled_from([">", ">=", "<", "<=", "==", "!="])
_numbers = st.sampled_from([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0])


@st.composite
def _conditions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return f"{draw(_names)} {draw(_ops)} {draw(_numbers)}"
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(_conditions(depth + 1))})"
    return f"({draw(_conditions(depth + 1))}) {kind} ({draw(_conditions(depth + 1))})"


@settings(max_examples=150, deadline=None)
@given(
    text=_conditions(),
    metrics=st.dictionaries(_names, _numbers, max_size=3),
)
def test_sql_and_python_agree(text: str, metrics: dict[str, float]) -> None:
    assert parse_where(text).matches(metrics) is _sql_matches(text, metrics, {})
