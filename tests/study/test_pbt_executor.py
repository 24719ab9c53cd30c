"""PBT members run through the executor: a failing node is an ExecutionError naming it,
and members whose configuration repeats are served from the cache (issue 11)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from soma import Cache, StudyError
from soma.errors import ExecutionError
from soma.pbt import PBT, IterativeFilter
from soma.space import FloatRange

X = np.zeros((6, 1))
Y = np.full(6, 4.0)


class Counted(IterativeFilter):
    """Moves a scalar towards mean(y); counts partial_fit calls (in this process)."""

    lr = FloatRange(0.05, 0.5, default=0.2)
    calls: ClassVar[list[float]] = []

    def init_state(self, x: Any, y: Any = None) -> float:
        return 0.0

    def partial_fit(self, x: Any, y: Any, state: float, steps: int) -> float:
        Counted.calls.append(self.lr)
        for _ in range(steps):
            state += self.lr * (float(np.mean(y)) - state)
        return state

    def forward(self, x: Any, state: float) -> Any:
        return np.full(len(x), state)


class Broken(Counted):
    def partial_fit(self, x: Any, y: Any, state: float, steps: int) -> float:
        raise RuntimeError("diverged")


def _mse(y: Any, p: Any) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(p)) ** 2))


def test_a_members_failing_node_surfaces_as_an_execution_error_naming_it() -> None:
    pbt = PBT(Broken(), data=(X, Y), metric=_mse, direction="minimize", population=2, rounds=1)
    with pytest.raises(StudyError, match=r"node 'broken' failed during fit: RuntimeError") as info:
        pbt.run()
    cause = info.value.__cause__
    assert isinstance(cause, ExecutionError)
    assert cause.node == "broken" and cause.phase == "fit"
    assert isinstance(cause.cause, RuntimeError)


def test_members_whose_configuration_repeats_hit_the_cache() -> None:
    Counted.calls.clear()
    cache = Cache()
    pbt = PBT(
        Counted(), data=(X, Y), metric=_mse, direction="minimize", population=4, rounds=3,
        steps=2, space={"counted.lr": [0.25]}, seed=0, cache=cache,
    )  # fmt: skip
    result = pbt.run()
    # All four members start alike, and copying a donor keeps them alike: one partial_fit a
    # round, the other three members served from the cache.
    assert Counted.calls == [0.25, 0.25, 0.25]
    assert cache.stats().hits >= 3 * 3
    expected = 0.0
    for _ in range(6):
        expected += 0.25 * (4.0 - expected)
    assert result.best_value == pytest.approx((4.0 - expected) ** 2)
    assert {m.score for m in result.population} == {result.best_value}


def test_distinct_members_are_not_served_each_others_states() -> None:
    Counted.calls.clear()
    pbt = PBT(
        Counted(), data=(X, Y), metric=_mse, direction="minimize", population=3, rounds=1,
        space={"counted.lr": [0.1, 0.2, 0.4]}, seed=3, cache=Cache(),
    )  # fmt: skip
    result = pbt.run()
    lrs = [m.params["counted.lr"] for m in result.population]
    assert sorted(Counted.calls) == sorted(set(lrs))  # one fit per distinct configuration
    for member in result.population:
        assert member.state == pytest.approx(4.0 * member.params["counted.lr"])
