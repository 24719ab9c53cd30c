"""A research line's path through hypothesis space, and how new a proposed hypothesis is.

Every experiment is a point in embedding space (its name, hypothesis, pipeline, notes and
tags, embedded). Ordered by start time, a line's points are its **hypothesis trajectory**:
``step`` is how far each experiment moved from the one before (cosine distance), ``from_start``
how far the line has moved from its first experiment. A **direction change** is a point where
the mean of the trajectory shifts: the line stopped exploring one region and started on
another. It is found with PELT (``ruptures``, least-squares cost over the whole vector, the
same algorithm as the metric change points) and explained by the experiments on each side:
the one nearest each segment's centre (its "focus"), the drift between the two centres and
the line's metric before and after.

Why not ``chronos_vector.detect_changepoints``: in chronos-vector 0.1.1 it misplaces clear
shifts (a 1-D step from 0 to 1 at point 10 of 20, noise 0.05, is reported at point 5 with the
default penalty; two 64-d clusters of 10 points each at point 12 or 5), so the trajectory is
read from the temporal index but segmented here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from pydantic import BaseModel

from soma.knowledge._records import ChangePoint, Experiment, SearchHit

__all__ = [
    "DirectionChange",
    "HypothesisPoint",
    "HypothesisTrajectory",
    "Novelty",
    "detect_direction_changes",
    "hypothesis_trajectory",
]


class HypothesisPoint(BaseModel):
    """One experiment on a line's hypothesis trajectory."""

    experiment_id: str
    time: datetime
    name: str
    hypothesis: str | None
    step: float  # cosine distance from the previous experiment (0 for the first)
    from_start: float  # cosine distance from the line's first experiment in the window


class DirectionChange(BaseModel):
    """Where a line's focus moved: ``experiment_id`` starts a new region of hypothesis space.

    ``before_focus_id`` / ``after_focus_id`` are the experiments nearest the centre of each
    side; ``drift`` is the cosine distance between the two centres; ``before_value`` /
    ``after_value`` the mean of the line's metric on each side (None when not measured).
    """

    index: int
    experiment_id: str
    previous_experiment_id: str
    time: datetime
    drift: float
    before_ids: list[str]
    after_ids: list[str]
    before_focus_id: str
    after_focus_id: str
    before_value: float | None
    after_value: float | None
    explanation: str


class HypothesisTrajectory(BaseModel):
    """A line's path through hypothesis space, its direction changes and metric change points.

    ``source`` says where the vectors were read: the ChronosVector temporal index (the line's
    entity trajectory) or the FAISS backend's index.
    """

    line: str
    metric: str
    source: str
    points: list[HypothesisPoint]
    total_drift: float  # cosine distance between the first and last experiment
    direction_changes: list[DirectionChange]
    metric_change_points: list[ChangePoint]


class Novelty(BaseModel):
    """How new a proposed hypothesis is against what was already tried (and refuted).

    ``novelty`` is ``1 - similarity`` of the nearest compared experiment (1.0 when there is
    none); ``nearest`` the closest ones, best first; ``window_start`` the earliest start time
    compared (None: all time); ``verdicts`` the verdicts compared against (empty: any).
    """

    text: str
    line: str | None
    novelty: float
    similarity: float | None
    nearest: list[SearchHit]
    window_start: datetime | None
    verdicts: list[str]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _cos_distance(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _unit(np.asarray(a, dtype=np.float64)), _unit(np.asarray(b, dtype=np.float64))
    return float(max(0.0, 1.0 - float(a @ b)))


def _effective_dim(steps: np.ndarray) -> float:
    """How many independent directions the steps between neighbours spread over.

    ``E[|s_i|^2 |s_j|^2] / E[(s_i . s_j)^2]`` over steps at least two apart (neighbouring
    steps share a point): D for isotropic noise in D dimensions, less for noise confined to
    fewer (a hashing embedder's sparse vectors), at most the vectors' dimension.
    """
    gram = steps @ steps.T
    sq = np.diag(gram)
    i, j = np.triu_indices(len(steps), 2)
    if len(i) == 0:
        return 1.0
    cross = float(np.mean(gram[i, j] ** 2))
    ratio = float(np.mean(sq[i] * sq[j])) / cross if cross > 0 else float(steps.shape[1])
    return float(min(max(ratio, 1.0), steps.shape[1]))


def detect_direction_changes(
    vectors: np.ndarray, *, min_size: int = 2, penalty_factor: float = 4.0
) -> list[int]:
    """Indices where the mean of a vector trajectory shifts: each starts a new segment.

    PELT (``ruptures``) with a least-squares cost over all dimensions. Without a change, the
    best split of n points in D effective dimensions lowers the squared error by about
    ``sigma2 * (1 + z * sqrt(2 / D))`` (a chi-square with D degrees of freedom, maximised over
    the splits), where ``sigma2`` is the noise per point, estimated as half the median squared
    step between neighbours (robust to the few steps that are the changes). The penalty per
    change is ``sigma2 * (1 + penalty_factor * sqrt(2 ln(max(n, 20)) / D))``. Calibrated on
    unit vectors (8-40 points, 4-384 dimensions, and hashing-embedded random texts): at most
    1 of 200 trajectories without a change reports one; two 64-d clusters of 8 points with
    noise 2 (as large as the clusters' distance) are split at the right point 47 times in 50.
    Fewer than ``2 * min_size`` points: none.
    """
    import ruptures

    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if n < 2 * min_size or not np.all(np.isfinite(x)):
        return []
    steps = np.diff(x, axis=0)
    spread = float(np.max(np.sum((x - x.mean(axis=0)) ** 2, axis=1)))
    if spread == 0.0:
        return []
    sigma2 = max(float(np.median(np.sum(steps**2, axis=1))) / 2.0, 1e-6 * spread)
    dims = _effective_dim(steps)
    penalty = sigma2 * (1.0 + penalty_factor * math.sqrt(2.0 * math.log(max(n, 20)) / dims))
    ends = ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(x).predict(pen=penalty)
    return [int(e) for e in ends[:-1]]


def _focus(exps: Sequence[Experiment], vectors: np.ndarray) -> tuple[int, np.ndarray]:
    """The index of the experiment nearest the centre of ``vectors``, and the centre."""
    centre = vectors.mean(axis=0)
    return int(np.argmax(_unit(vectors) @ _unit(centre))), centre


def _label(exp: Experiment) -> str:
    text = (exp.hypothesis or exp.name).strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _mean_value(exps: Sequence[Experiment], metric: str) -> float | None:
    values = [e.metrics[metric] for e in exps if e.status == "ok" and metric in e.metrics]
    return float(np.mean(values)) if values else None


def hypothesis_trajectory(
    line: str,
    metric: str,
    experiments: Sequence[Experiment],
    vectors: np.ndarray,
    *,
    source: str,
    metric_change_points: list[ChangePoint],
) -> HypothesisTrajectory:
    """The trajectory of ``experiments`` (in start order, one row of ``vectors`` each)."""
    if not experiments:  # a new line, or a window with nothing in it: an empty path
        return HypothesisTrajectory(
            line=line,
            metric=metric,
            source=source,
            points=[],
            total_drift=0.0,
            direction_changes=[],
            metric_change_points=metric_change_points,
        )
    vectors = np.asarray(vectors, dtype=np.float64).reshape(len(experiments), -1)
    points = [
        HypothesisPoint(
            experiment_id=str(exp.id),
            time=exp.started,
            name=exp.name,
            hypothesis=exp.hypothesis,
            step=0.0 if i == 0 else _cos_distance(vectors[i - 1], vectors[i]),
            from_start=_cos_distance(vectors[0], vectors[i]),
        )
        for i, exp in enumerate(experiments)
    ]
    cuts = detect_direction_changes(vectors)
    bounds = [0, *cuts, len(experiments)]
    changes = []
    for i, cut in enumerate(cuts):
        before, after = experiments[bounds[i] : cut], experiments[cut : bounds[i + 2]]
        b_at, b_centre = _focus(before, vectors[bounds[i] : cut])
        a_at, a_centre = _focus(after, vectors[cut : bounds[i + 2]])
        drift = _cos_distance(b_centre, a_centre)
        b_value, a_value = _mean_value(before, metric), _mean_value(after, metric)
        explanation = (
            f"focus moved from {_label(before[b_at])!r} ({len(before)} experiments "
            f"{before[0].id} … {before[-1].id}) to {_label(after[a_at])!r} ({len(after)} "
            f"experiments from {after[0].id}), cosine drift {drift:.3f}"
        )
        if b_value is not None and a_value is not None:
            explanation += f"; mean {metric} {b_value:.4g} before, {a_value:.4g} after"
        changes.append(
            DirectionChange(
                index=cut,
                experiment_id=str(experiments[cut].id),
                previous_experiment_id=str(experiments[cut - 1].id),
                time=experiments[cut].started,
                drift=drift,
                before_ids=[str(e.id) for e in before],
                after_ids=[str(e.id) for e in after],
                before_focus_id=str(before[b_at].id),
                after_focus_id=str(after[a_at].id),
                before_value=b_value,
                after_value=a_value,
                explanation=explanation,
            )
        )
    total = _cos_distance(vectors[0], vectors[-1]) if len(experiments) else 0.0
    return HypothesisTrajectory(
        line=line,
        metric=metric,
        source=source,
        points=points,
        total_drift=total,
        direction_changes=changes,
        metric_change_points=metric_change_points,
    )
