"""Branch runs only the taken arm; Loop ends deterministically; counts are validated."""

from __future__ import annotations

import pytest
from runtime_filters import CALLS, Add, Center, Mul

from soma import Branch, Cache, ExecutionError, Filter, Graph, Loop, ValidationError


def test_only_the_taken_branch_arm_runs():
    g = Graph.somatize(Branch(lambda x: x > 0, then=Mul(factor=10.0), otherwise=Add(amount=-1.0)))
    assert g.forward(2.0) == 20.0
    assert CALLS == {"Mul.forward:10.0": 1}
    report = g.last_run.nodes
    assert report["mul"].status == "ok" and report["add"].status == "skipped"
    CALLS.clear()
    assert g.forward(-2.0) == -3.0
    assert CALLS == {"Add.forward:-1.0": 1}
    assert g.last_run.nodes["mul"].status == "skipped"


def test_branch_result_feeds_downstream_and_empty_arm_passes_through():
    g = Graph.somatize(Add() >> Branch(lambda x: x >= 5, then=Mul(factor=3.0)) >> Add(amount=100.0))
    assert g.forward(10.0) == 133.0  # (10 + 1) * 3 + 100
    assert g.forward(1.0) == 102.0  # (1 + 1) passes through, + 100
    assert g.leaves == ["add_2"]  # the arm's node is not a leaf of the graph


def test_branch_fits_only_the_taken_arm_and_forward_into_the_other_arm_fails():
    g = Graph.somatize(Branch(lambda x: len(x) > 2, then=Center(), otherwise=Mul()))
    g.fit([1.0, 2.0, 3.0])
    assert g.states["center"] == 2.0
    assert g.forward([5.0, 5.0, 5.0]) == [3.0, 3.0, 3.0]
    g2 = Graph.somatize(Branch(lambda x: len(x) > 2, then=Center(), otherwise=Keep()))
    g2.fit([1.0])  # takes "otherwise": Center is never fitted
    assert CALLS["Center.fit"] == 1  # only from g above
    with pytest.raises(ExecutionError, match="no fitted state") as info:
        g2.forward([1.0, 2.0, 3.0])
    assert info.value.node == "center"


class Keep(Filter):
    def forward(self, x, state):
        return x


def test_branch_predicate_error_names_the_branch_node():
    g = Graph.somatize(Add() >> Branch(lambda x: x["missing"], then=Mul()))
    with pytest.raises(ExecutionError) as info:
        g.forward(1.0)
    assert info.value.node == "branch" and isinstance(info.value.__cause__, TypeError)


def test_loop_stops_on_until_or_max_iterations():
    g = Graph.somatize(Loop(Mul(), until=lambda x: x > 100, max_iterations=50))
    assert g.forward(1.0) == 128.0
    assert g.last_run.nodes["loop"].runs == 7 and g.last_run.nodes["mul"].runs == 7
    capped = Graph.somatize(Loop(Mul(), until=lambda x: x > 100, max_iterations=3))
    assert capped.forward(1.0) == 8.0
    fixed = Graph.somatize(Add() >> Loop(Add(amount=10.0) >> Mul(factor=1.0), max_iterations=4))
    assert fixed.forward(0.0) == 41.0
    assert fixed.forward(0.0) == 41.0  # deterministic: the same answer every time


@pytest.mark.parametrize("bad", [0, -1, -100, True, 2.0, None])
def test_loop_max_iterations_is_validated(bad):
    with pytest.raises(ValidationError, match="max_iterations"):
        Loop(Mul(), max_iterations=bad)  # type: ignore[arg-type]


def test_control_step_arguments_are_validated():
    with pytest.raises(ValidationError, match="predicate"):
        Branch("yes", then=Mul())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="then"):
        Branch(bool, then=None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="until"):
        Loop(Mul(), until=3, max_iterations=2)  # type: ignore[arg-type]


class Shift(Filter):
    """Learns to shift its input so that its mean becomes zero."""

    def fit(self, x, y=None):
        return -sum(x) / len(x) + 1.0

    def forward(self, x, state):
        return [v + state for v in x]


def test_loop_body_is_fitted_per_iteration_and_forward_reuses_those_states():
    g = Graph.somatize(Loop(Shift(), max_iterations=3))
    out = g.fit_forward([0.0, 2.0])
    # iteration 1: mean 1 -> shift 0 ; iteration 2: mean 1 -> 0 ; iteration 3: same
    assert out == [0.0, 2.0]
    assert g.states["shift"] == [0.0, 0.0, 0.0]
    assert g.forward([10.0, 12.0]) == [10.0, 12.0]


def test_forward_needing_more_loop_iterations_than_fit_fails_clearly():
    g = Graph.somatize(Loop(Shift(), until=lambda x: x[0] > 5, max_iterations=10))
    g.fit([10.0])  # every pass gives [1.0], never > 5: all 10 iterations are fitted
    fitted = len(g.states["shift"])
    assert fitted == 10
    g2 = Graph.somatize(Loop(Shift(), until=lambda x: x[0] < 5, max_iterations=10))
    g2.fit([10.0])  # first pass gives [1.0] < 5: one iteration fitted
    assert len(g2.states["shift"]) == 1
    with pytest.raises(ExecutionError, match="needs iteration 2") as info:
        g2.forward([100.0])  # 100 + (-9) = 91: not < 5, needs a second pass
    assert info.value.node == "shift"


def test_loop_iterations_are_cached_and_rerun_computes_nothing():
    cache = Cache()
    expr = Center() >> Loop(Shift(), until=lambda x: x[0] > 100, max_iterations=4)
    first = Graph.somatize(expr, cache=cache).fit_forward([1.0, 3.0])
    CALLS.clear()
    g = Graph.somatize(expr, cache=cache)
    assert g.fit_forward([1.0, 3.0]) == first
    assert CALLS == {}
    assert g.last_run.nodes["shift"].runs == 4 and g.last_run.nodes["shift"].cache_hit
    assert g.last_run.nodes["center"].cache_hit and g.last_run.cache_misses == 0


def test_nested_loop_in_branch():
    inner = Loop(Add(amount=1.0), max_iterations=3)
    g = Graph.somatize(Branch(lambda x: x > 0, then=inner, otherwise=Mul(factor=-1.0)))
    assert g.forward(1.0) == 4.0
    assert g.forward(-2.0) == 2.0
    assert g.last_run.nodes["add"].status == "skipped"
