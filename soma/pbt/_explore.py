"""Exploit and explore: truncation selection, perturbation and resampling within bounds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from soma.space import Choice, FloatRange, IntRange, SearchSpace
from soma.vocabulary import Direction

__all__ = ["binary_tournament", "explore", "perturb_value", "sample_value", "truncation"]


def sample_value(space: SearchSpace, rng: np.random.Generator) -> Any:
    """A uniform draw (log-uniform for log ranges), on the step grid when there is one."""
    if isinstance(space, Choice):
        return space.choices[int(rng.integers(len(space.choices)))]
    if isinstance(space, IntRange):
        if space.log:
            value = math.exp(rng.uniform(math.log(space.low), math.log(space.high + 1)))
            return _snap_int(space, math.floor(value))
        return space.low + space.step * int(
            rng.integers((space.high - space.low) // space.step + 1)
        )
    if isinstance(space, FloatRange):
        if space.log:
            value = math.exp(rng.uniform(math.log(space.low), math.log(space.high)))
        else:
            value = float(rng.uniform(space.low, space.high))
        return _snap_float(space, value)
    raise TypeError(f"unsupported search space {space!r}")


def perturb_value(space: SearchSpace, value: Any, factor: float) -> Any:
    """``value * factor`` kept inside the declared bounds (choices move to a neighbour)."""
    if isinstance(space, Choice):
        choices = list(space.choices)
        index = choices.index(value) if value in choices else 0
        index += 1 if factor > 1 else -1
        return choices[min(max(index, 0), len(choices) - 1)]
    if isinstance(space, IntRange):
        moved = round(value * factor)
        if moved == value:  # small ints would never move by a factor near 1
            moved = value + (space.step if factor > 1 else -space.step)
        return _snap_int(space, moved)
    if isinstance(space, FloatRange):
        return _snap_float(space, float(value) * factor)
    raise TypeError(f"unsupported search space {space!r}")


def _snap_int(space: IntRange, value: int) -> int:
    value = min(max(int(value), space.low), space.high)
    return space.low + (value - space.low) // space.step * space.step


def _snap_float(space: FloatRange, value: float) -> float:
    value = min(max(value, space.low), space.high)
    if space.step is not None:
        value = space.low + round((value - space.low) / space.step) * space.step
        value = min(max(value, space.low), space.high)
    return float(value)


def explore(
    params: Mapping[str, Any],
    space: Mapping[str, SearchSpace],
    rng: np.random.Generator,
    *,
    resample_probability: float,
    factors: Sequence[float],
) -> dict[str, Any]:
    """New hyperparameters near ``params``: each one is resampled with probability
    ``resample_probability``, else multiplied by a factor drawn from ``factors``."""
    out = dict(params)
    for name in sorted(space):
        if rng.random() < resample_probability:
            out[name] = sample_value(space[name], rng)
        else:
            factor = float(factors[int(rng.integers(len(factors)))])
            out[name] = perturb_value(space[name], out[name], factor)
    return out


def truncation(
    scores: Mapping[int, float | None], direction: str, fraction: float
) -> tuple[list[int], list[int]]:
    """(bottom, top) member ids: the bottom ``fraction`` (plus every member without a valid
    checkpoint) is replaced; donors come from the top ``fraction`` of valid members only."""
    valid = [m for m, s in scores.items() if s is not None]
    failed = sorted(m for m, s in scores.items() if s is None)
    sign = -Direction(direction).sign  # best first
    ranked = sorted(valid, key=lambda m: (sign * scores[m], m))  # type: ignore[operator]
    cutoff = max(1, math.ceil(len(scores) * fraction))
    cutoff = min(cutoff, len(scores) // 2) if len(scores) >= 2 else 0
    top = ranked[:cutoff] if cutoff else []
    bottom_valid = [m for m in ranked[len(ranked) - cutoff :] if m not in top] if cutoff else []
    return sorted(set(failed) | set(bottom_valid)), top


def binary_tournament(
    scores: Mapping[int, float | None], direction: str, rng: np.random.Generator
) -> dict[int, int]:
    """``{loser: winner}``: each member meets one other member drawn at random; when the
    other scored better, it is the donor. A member without a valid checkpoint always
    loses (to a valid opponent); nobody copies a failed member."""
    members = sorted(scores)
    sign = -Direction(direction).sign  # lower sign * score is better
    valid = [m for m in members if scores[m] is not None]
    donors: dict[int, int] = {}
    if len(members) < 2 or not valid:
        return donors
    for member in members:
        others = [m for m in members if m != member]
        rival = others[int(rng.integers(len(others)))]
        mine, theirs = scores[member], scores[rival]
        if theirs is None:
            if mine is None:  # both failed: draw again among the valid ones
                donors[member] = valid[int(rng.integers(len(valid)))]
            continue
        if mine is None or sign * theirs < sign * mine:
            donors[member] = rival
    return donors
