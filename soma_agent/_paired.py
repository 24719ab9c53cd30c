"""Paired comparisons of two experiments on the same validation samples.

The noise that matters when two pipelines are compared is the measurement's own: how much
the difference could move if the validation samples had been drawn again. Both pipelines
were scored on the *same* samples, so the test is paired:

* **McNemar's exact test** when the per-sample loss is 0/1 (classification correctness):
  ``b`` = samples the new pipeline gets right and the reference wrong, ``c`` = the reverse;
  under "no difference" ``b ~ Binomial(b + c, 1/2)``; two-sided p-value.
* **A paired bootstrap** of the mean per-sample loss difference otherwise (squared error for
  r2 / mse / rmse, absolute error for mae): ``B`` resamples of the sample indices (a fixed
  seed, so the verdict is reproducible), a 95 % percentile interval and a two-sided p-value.

Losses are the same for r2 and mse (squared errors on the same labels), so the test, and
every decision made from it, is the same whichever of the two a project maximizes or
minimizes. ``loss_delta`` is new minus reference: negative means the new one is better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["ALPHA", "PairedTest", "paired_test", "sample_losses"]

#: Two-sided significance level of "beyond noise".
ALPHA = 0.05
#: Bootstrap resamples (2,000 keeps a p-value near 0.05 within about +-0.005).
BOOTSTRAP_B = 2000
_SEED = 20240917


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison: the rule, its inputs and its result."""

    rule: str  # "mcnemar" | "paired_bootstrap"
    n: int
    loss_delta: float  # mean per-sample loss, new minus reference (negative: new is better)
    p_value: float
    interval: tuple[float, float]  # 95 % interval of loss_delta
    detail: str
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def better(self) -> bool:
        """The new experiment is better beyond noise."""
        return self.significant and self.loss_delta < 0

    @property
    def worse(self) -> bool:
        """The new experiment is worse beyond noise."""
        return self.significant and self.loss_delta > 0

    @property
    def standard_error(self) -> float:
        """Approximate standard error of ``loss_delta`` (interval half-width / 1.96)."""
        return (self.interval[1] - self.interval[0]) / (2 * 1.96)

    def text(self) -> str:
        low, high = self.interval
        return (
            f"{self.rule} on {self.n} paired validation samples: {self.detail}, "
            f"mean loss difference {self.loss_delta:+.4g} (95% [{low:+.4g}, {high:+.4g}]), "
            f"p = {self.p_value:.3g} (beyond noise when p < {self.alpha:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = list(self.interval)
        data["significant"] = self.significant
        return data


def sample_losses(prediction: Any, target: Any, metric: str) -> np.ndarray:
    """One loss per validation sample for ``metric`` (lower is better), as float64.

    Integer, bool or text labels: 0 where right, 1 where wrong (accuracy and the other
    classification scores). Float labels: the absolute error for ``mae``, else the squared
    error. ValueError when there is not one prediction per sample.
    """
    target = np.asarray(target)
    prediction = np.asarray(prediction)
    if prediction.shape[:1] != target.shape[:1]:
        raise ValueError(
            f"prediction: expected one value per validation sample ({target.shape[:1]}), "
            f"got shape {prediction.shape}"
        )
    n = len(target)
    if target.dtype.kind in "biuUSO":
        return (prediction != target).reshape(n, -1).any(axis=1).astype(np.float64)
    diff = (prediction.astype(np.float64) - target.astype(np.float64)).reshape(n, -1)
    if metric == "mae":
        return np.abs(diff).mean(axis=1)
    return (diff**2).mean(axis=1)


def paired_test(new: np.ndarray, reference: np.ndarray, *, alpha: float = ALPHA) -> PairedTest:
    """Compare per-sample losses of two experiments on the same samples (see the module)."""
    new = np.asarray(new, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if new.shape != reference.shape or new.ndim != 1 or len(new) == 0:
        raise ValueError(
            f"losses: expected two 1-d arrays over the same samples, got shapes {new.shape} "
            f"and {reference.shape}"
        )
    n = len(new)
    diff = new - reference
    if np.isin(new, (0.0, 1.0)).all() and np.isin(reference, (0.0, 1.0)).all():
        b = int(np.sum((new == 0) & (reference == 1)))  # fixed by the new one
        c = int(np.sum((new == 1) & (reference == 0)))  # broken by the new one
        p = _binomial_two_sided(b, b + c)
        half = 1.96 * math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n if n else 0.0
        mean = (c - b) / n
        return PairedTest(
            "mcnemar",
            n,
            mean,
            p,
            (mean - half, mean + half),
            f"{b} sample(s) fixed, {c} broken",
            alpha,
        )
    rng = np.random.default_rng(_SEED)
    index = rng.integers(0, n, size=(BOOTSTRAP_B, n))
    boot = diff[index].mean(axis=1)
    mean = float(diff.mean())
    if not np.any(diff):
        p = 1.0
    else:
        p = min(1.0, 2.0 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
        p = max(p, 1.0 / BOOTSTRAP_B)
    low, high = np.percentile(boot, [2.5, 97.5])
    better = int(np.sum(diff < 0))
    return PairedTest(
        "paired_bootstrap",
        n,
        mean,
        p,
        (float(low), float(high)),
        f"{BOOTSTRAP_B} resamples, {better} of {n} samples improved",
        alpha,
    )


def _binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)
