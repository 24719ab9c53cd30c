"""Was the hypothesis supported? A noise-aware comparison against the parent experiment.

The rule (also in the README):

* ``delta`` is the improvement over the reference (the parent experiment, or the line's
  best before this experiment when there is no parent), signed so that positive is better
  whatever the metric's direction;
* the noise threshold is the largest of: twice the standard deviation of exact repeats of
  this pipeline (same summary and params, e.g. different seeds) when there are at least two;
  the line's per-experiment noise, ``soma.knowledge.noise_scale`` of its successful results in
  order (a robust estimate from first differences, so neither a steady trend nor a few
  outliers inflate it) when there are at least three; the metric's resolution when it is
  known (for accuracy on ``n`` validation samples, 1.5 / n: a difference of one sample is
  never an effect); and 0.1 % of the reference value;
* a hypothesis that expects an improvement is *supported* when ``delta > threshold``,
  *refuted* when ``delta < -threshold``, else *inconclusive*; one that expects no change
  (an ablation) is supported unless the result is worse by more than the threshold; one
  that expects a degradation mirrors the first case; a failed experiment refutes, and no
  reference at all leaves it inconclusive.

>>> judge(0.95, 0.90, "maximize", expected="improve", line_values=[0.9, 0.92, 0.95]).verdict
'supported'
>>> judge(0.901, 0.90, "maximize", expected="improve", line_values=[0.9, 0.8, 0.9, 1.0]).verdict
'inconclusive'
>>> judge(0.80, 0.90, "maximize", expected="no_change", line_values=[0.8, 0.9, 0.95]).verdict
'refuted'
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "RELATIVE_FLOOR",
    "SAMPLE_COUNT_METRICS",
    "Verdict",
    "judge",
    "metric_resolution",
    "noise_threshold",
]

#: An effect smaller than this fraction of the reference is never more than noise.
RELATIVE_FLOOR = 1e-3


@dataclass(frozen=True)
class Verdict:
    verdict: str  # supported | refuted | inconclusive
    reason: str
    delta: float | None = None
    threshold: float | None = None


def noise_threshold(
    reference: float,
    *,
    repeat_values: Sequence[float] = (),
    line_values: Sequence[float] = (),
    resolution: tuple[float, str] | None = None,
) -> tuple[float, str]:
    """The smallest change that counts as an effect, and how it was derived."""
    from soma.knowledge import noise_scale

    candidates = [(RELATIVE_FLOOR * abs(reference) or 1e-12, "0.1% of the reference")]
    if resolution is not None:
        candidates.append(resolution)
    if len(repeat_values) >= 2:
        candidates.append(
            (2.0 * statistics.stdev(repeat_values), f"2x std of {len(repeat_values)} repeats")
        )
    if len(line_values) >= 3:
        candidates.append(
            (noise_scale(list(line_values)), f"noise of the line's {len(line_values)} results")
        )
    return max(candidates)


def judge(
    value: float | None,
    reference: float | None,
    direction: str,
    *,
    expected: str = "improve",
    status: str = "ok",
    error: str | None = None,
    reference_id: str | None = None,
    repeat_values: Sequence[float] = (),
    line_values: Sequence[float] = (),
    resolution: tuple[float, str] | None = None,
) -> Verdict:
    """The verdict on one experiment's hypothesis (see the module docstring for the rule)."""
    if status != "ok" or value is None:
        why = f": {error}" if error else ""
        return Verdict("refuted", f"the experiment did not succeed (status {status}){why}")
    if reference is None:
        return Verdict("inconclusive", "no reference result to compare against yet")
    sign = 1.0 if direction == "maximize" else -1.0
    delta = sign * (value - reference)
    threshold, basis = noise_threshold(
        reference, repeat_values=repeat_values, line_values=line_values, resolution=resolution
    )
    against = f"reference {reference_id} ({reference:.4g})" if reference_id else f"{reference:.4g}"
    change = (
        f"{value:.4g} vs {against}: {'+' if delta >= 0 else ''}{delta:.4g} "
        f"(noise threshold {threshold:.3g}, {basis})"
    )
    if expected == "no_change":
        if delta < -threshold:
            return Verdict("refuted", f"worse beyond noise: {change}", delta, threshold)
        return Verdict("supported", f"not worse beyond noise: {change}", delta, threshold)
    better, worse = delta > threshold, delta < -threshold
    if expected == "degrade":
        better, worse = worse, better
    if better:
        return Verdict("supported", f"as predicted: {change}", delta, threshold)
    if worse:
        return Verdict("refuted", f"opposite of the prediction: {change}", delta, threshold)
    return Verdict("inconclusive", f"within noise: {change}", delta, threshold)


#: Metrics that count correct validation samples: their resolution is one sample.
SAMPLE_COUNT_METRICS = frozenset({"accuracy"})


def metric_resolution(metric: str, n_valid: int | None) -> tuple[float, str] | None:
    """The smallest meaningful change of ``metric`` on ``n_valid`` validation samples.

    >>> metric_resolution("accuracy", 360)
    (0.004166666666666667, '1.5 validation samples of 360')
    >>> metric_resolution("rmse", 360) is None
    True
    """
    if metric not in SAMPLE_COUNT_METRICS or not n_valid:
        return None
    # 1.5 rather than 1: a one-sample difference must stay below the threshold even after
    # floating-point rounding.
    return 1.5 / n_valid, f"1.5 validation samples of {n_valid}"
