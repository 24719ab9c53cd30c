"""Was the hypothesis supported? A comparison against the reference on the measurement's noise.

The rule (also in the README):

* ``delta`` is the change of the metric against the reference (the parent experiment, or
  the line's best before this experiment when there is no parent), signed so that positive
  is better whatever the metric's direction;
* when both experiments kept their per-sample validation losses, the comparison is a
  **paired test on the same samples** (:mod:`soma_agent._paired`: McNemar's exact test for
  0/1 correctness, a paired bootstrap of squared or absolute errors otherwise); the result
  is *better* / *worse beyond noise* when its two-sided p-value is below 0.05, in the
  direction of the mean loss difference;
* without them (experiments from before losses were kept, study trials), a threshold: the
  largest of twice the standard deviation of exact repeats of this pipeline (at least two),
  the metric's resolution (for accuracy on ``n`` validation samples, 1.5 / n: one sample is
  never an effect) and 0.1 % of the reference value. The spread of the line's *other*
  pipelines is not noise of this measurement and is not used;
* an expected improvement is *supported* when better beyond noise, *refuted* when worse
  beyond noise, else *inconclusive*; an expected "no change" (a draft that should be
  competitive, an ablation whose step should not matter) is *refuted* when worse beyond
  noise, else *supported*; an expected degradation mirrors the first case. A failed
  experiment refutes, and no reference at all leaves it inconclusive.

>>> judge(0.95, 0.90, "maximize", expected="improve").verdict
'supported'
>>> judge(0.80, 0.90, "maximize", expected="no_change").verdict
'refuted'
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from soma.vocabulary import Direction
from soma_agent._paired import PairedTest

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
    #: The comparison's rule, inputs and result (a paired test's fields, or the threshold's).
    test: dict[str, Any] = field(default_factory=dict)


def noise_threshold(
    reference: float,
    *,
    repeat_values: Sequence[float] = (),
    resolution: tuple[float, str] | None = None,
) -> tuple[float, str]:
    """The smallest change that counts as an effect without a paired test, and its basis."""
    candidates = [(RELATIVE_FLOOR * abs(reference) or 1e-12, "0.1% of the reference")]
    if resolution is not None:
        candidates.append(resolution)
    if len(repeat_values) >= 2:
        candidates.append(
            (2.0 * statistics.stdev(repeat_values), f"2x std of {len(repeat_values)} repeats")
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
    paired: PairedTest | None = None,
    repeat_values: Sequence[float] = (),
    resolution: tuple[float, str] | None = None,
) -> Verdict:
    """The verdict on one experiment's hypothesis (see the module docstring for the rule)."""
    if status != "ok" or value is None:
        why = f": {error}" if error else ""
        return Verdict("refuted", f"the experiment did not succeed (status {status}){why}")
    if reference is None:
        return Verdict("inconclusive", "no reference result to compare against yet")
    delta = Direction(direction).sign * (value - reference)
    against = f"reference {reference_id} ({reference:.4g})" if reference_id else f"{reference:.4g}"
    head = f"{value:.4g} vs {against}: {'+' if delta >= 0 else ''}{delta:.4g}"
    threshold: float | None
    if paired is not None:
        better, worse = paired.better, paired.worse
        threshold = None
        change = f"{head} ({paired.text()})"
        test = {**paired.to_dict(), "reference_id": reference_id}
    else:
        threshold, basis = noise_threshold(
            reference, repeat_values=repeat_values, resolution=resolution
        )
        better, worse = delta > threshold, delta < -threshold
        change = f"{head} (no paired losses: noise threshold {threshold:.3g}, {basis})"
        test = {
            "rule": "threshold",
            "threshold": threshold,
            "basis": basis,
            "reference_id": reference_id,
            "significant": better or worse,
        }
    if expected == "no_change":
        if worse:
            return Verdict("refuted", f"worse beyond noise: {change}", delta, threshold, test)
        return Verdict("supported", f"not worse beyond noise: {change}", delta, threshold, test)
    if expected == "degrade":
        better, worse = worse, better
    if better:
        return Verdict("supported", f"as predicted: {change}", delta, threshold, test)
    if worse:
        return Verdict("refuted", f"opposite of the prediction: {change}", delta, threshold, test)
    return Verdict("inconclusive", f"within noise: {change}", delta, threshold, test)


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
