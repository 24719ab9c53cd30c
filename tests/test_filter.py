"""Filter hyperparameters, search declarations and expression building."""

from __future__ import annotations

import math

import pytest

from soma import Chain, Choice, Filter, FloatRange, Fork, GraphError, IntRange, ParamError, search


class Scale(Filter):
    factor = search(0.1, 10.0, default=2.0)
    rounds = search(1, 5, default=1)
    mode = search(choices=["mul", "add"], default="mul")
    label = "scale"

    def forward(self, x, state):
        return x * self.factor


class Mean(Filter):
    def fit(self, x, y=None):
        return sum(x) / len(x)

    def forward(self, x, state):
        return [v - state for v in x]


class Join(Filter):
    def forward(self, left, right, state):
        return (left, right)


class Many(Filter):
    def forward(self, *inputs, state=None):
        return inputs


def test_defaults_and_overrides():
    f = Scale()
    assert f.params == {"factor": 2.0, "rounds": 1, "mode": "mul", "label": "scale"}
    assert Scale(factor=3).factor == 3.0 and isinstance(Scale(factor=3).factor, float)
    assert Scale(rounds=4, mode="add").params["mode"] == "add"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"factr": 1.0}, "Scale: unknown parameter 'factr'"),
        ({"factor": 11.0}, "Scale.factor must be a float in [0.1, 10.0]"),
        ({"factor": math.nan}, "Scale.factor"),
        ({"factor": "big"}, "Scale.factor"),
        ({"rounds": 0}, "Scale.rounds must be an int in [1, 5]"),
        ({"rounds": 2.5}, "Scale.rounds"),
        ({"rounds": True}, "Scale.rounds"),
        ({"mode": "div"}, "Scale.mode must be one of 'mul', 'add'"),
        ({"label": 3}, "Scale.label must be a str"),
    ],
)
def test_bad_params_name_filter_and_parameter(kwargs, fragment):
    with pytest.raises(ParamError) as err:
        Scale(**kwargs)
    assert fragment in str(err.value)


def test_search_space_kinds():
    space = Scale.search_space()
    assert isinstance(space["factor"], FloatRange)
    assert isinstance(space["rounds"], IntRange)
    assert isinstance(space["mode"], Choice)
    assert "label" not in space
    assert search(1e-3, 1.0, log=True).default == 1e-3


@pytest.mark.parametrize(
    "call",
    [
        lambda: search(1.0, 1.0),
        lambda: search(0.0, 1.0, log=True),
        lambda: search(choices=[]),
        lambda: search(0, 10, default=11),
        lambda: search(choices=["a"], default="b"),
        lambda: search(1),
    ],
)
def test_bad_search_declarations(call):
    with pytest.raises(ValueError):
        call()


def test_params_are_immutable_in_place():
    f = Scale()
    with pytest.raises(AttributeError, match="with_params"):
        f.factor = 3.0
    assert f.with_params(factor=3.0).factor == 3.0
    assert f.factor == 2.0


def test_mutable_defaults_are_not_shared():
    class Bag(Filter):
        items = [1, 2]

        def forward(self, x, state):
            return x

    a, b = Bag(), Bag()
    a.items.append(3)
    assert b.items == [1, 2]


def test_stateless_and_arity():
    assert Scale.is_stateless() and not Mean.is_stateless()
    assert Scale.input_arity() == 1
    assert Join.input_arity() == 2
    assert Many.input_arity() is None


def test_expressions():
    a, b, c, d = Scale(), Mean(), Scale(factor=3.0), Join()
    expr = a >> (b | c) >> d
    assert isinstance(expr, Chain) and len(expr.steps) == 3
    assert isinstance(expr.steps[1], Fork) and len(expr.steps[1].branches) == 2
    assert len((a | b | c).branches) == 3
    assert isinstance(a >> [b, c], Chain)
    with pytest.raises(GraphError, match="instance"):
        _ = a >> Scale


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: search(0, 10, step=0), "step"),
        (lambda: search(0, 10, step=-2), "step"),
        (lambda: search(0.0, 1.0, step=0.0), "step"),
        (lambda: search(0.0, 1.0, step=-0.1), "step"),
        (lambda: search(0.0, 1.0, step=math.nan), "step"),
        (lambda: search(1e-3, 1.0, log=True, step=0.1), r"log=True\) cannot take a step"),
        (lambda: search(0.0, math.inf), "finite"),
        (lambda: search(-math.inf, 0.0, default=-1.0), "finite"),
    ],
)
def test_regression_zero_or_negative_steps_and_infinite_bounds_are_rejected(call, fragment):
    # `step or 1` turned step=0 into 1 and a negative step reached the samplers unchecked.
    with pytest.raises(ValueError, match=fragment):
        call()


def test_valid_steps_are_kept():
    assert search(0, 10, step=2).step == 2
    assert search(0.0, 1.0, step=0.25).step == 0.25
    assert search(1, 100, log=True).step == 1


def test_regression_positional_params_name_the_filter():
    # Python's own "takes 1 positional argument" named neither the filter's parameters
    # nor the way to pass them.
    with pytest.raises(ParamError, match=r"Scale: parameters are keyword arguments.*factor"):
        Scale(3.0)  # type: ignore[call-arg]
