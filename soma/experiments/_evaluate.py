"""``evaluate``: fit a graph on the training split, predict the validation split, score it.

Every face runs an experiment through here (the MCP tool, ``soma run``, ``soma project
spec --run``, ``Study``, the agent through the tool layer), so they count cache use, check
scores and name failures the same way. A remote worker does the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soma.errors import SomaError
from soma.experiments._metrics import MetricSpec
from soma.experiments._splits import Splits

if TYPE_CHECKING:
    from soma.events import RunReport
    from soma.graph import Graph

__all__ = ["STAGES", "Evaluation", "EvaluationError", "evaluate"]

#: The stages of an evaluation, in order (what ``progress`` is told and errors name).
STAGES = ("fit", "forward", "metric")


@dataclass
class Evaluation:
    """What one evaluation measured.

    ``prediction`` is the graph's output on the validation split and ``target`` its
    labels, kept so callers can compare two pipelines sample by sample
    (:meth:`per_sample_losses`). ``reports`` holds the fit and the forward run reports.
    """

    metrics: dict[str, float]
    primary: str
    prediction: Any
    target: Any
    reports: list[RunReport] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def value(self) -> float:
        """The primary metric's value."""
        return self.metrics[self.primary]

    @property
    def cache_hits(self) -> int:
        return sum(r.cache_hits for r in self.reports)

    @property
    def cache_misses(self) -> int:
        return sum(r.cache_misses for r in self.reports)

    @property
    def cache_keys(self) -> dict[str, str]:
        return cache_keys(self.reports)

    def per_sample_losses(self) -> Any:
        """One loss per validation sample, for paired comparisons (a numpy array).

        Labels of an integer, bool or text type: 0 where the prediction is right, 1 where
        it is wrong. Float labels: the squared error. ValueError when the prediction does
        not hold one value per sample.
        """
        import numpy as np

        target = np.asarray(self.target)
        prediction = np.asarray(self.prediction)
        if prediction.shape[:1] != target.shape[:1]:
            raise ValueError(
                f"the prediction has shape {prediction.shape}, the validation labels "
                f"{target.shape}: expected one value per sample"
            )
        if target.dtype.kind in "biuUSOb":
            wrong = prediction != target
            return wrong.reshape(len(target), -1).any(axis=1).astype(float)
        diff = (prediction.astype(float) - target.astype(float)).reshape(len(target), -1)
        return (diff**2).mean(axis=1)


class EvaluationError(SomaError):
    """An evaluation failed in ``stage`` (fit, forward or metric); ``cause`` is the error
    (an ExecutionError naming the node, or a MetricFailed), ``reports`` the runs so far."""

    def __init__(self, stage: str, cause: BaseException, reports: list[RunReport]) -> None:
        self.stage = stage
        self.cause = cause
        self.reports = reports
        super().__init__(f"{stage} failed: {cause}")


def cache_keys(reports: Sequence[RunReport | None]) -> dict[str, str]:
    """The cache keys of every node that ran, as ``"phase/node" -> key``."""
    keys: dict[str, str] = {}
    for report in reports:
        if report is None:
            continue
        for node, key in report.cache_keys.items():
            keys[f"{report.phase}/{node}"] = key
    return keys


def evaluate(
    graph: Graph,
    splits: Splits,
    metrics: Sequence[MetricSpec],
    *,
    progress: Callable[[str], Any] | None = None,
) -> Evaluation:
    """Fit ``graph`` on ``splits.train``, run it on ``splits.valid``, score every metric.

    The first metric is the primary one (no metrics: fit and predict only). Scores are
    finite floats (a NaN or a raise is a MetricFailed). Any failure reaches the caller as an
    :class:`EvaluationError` naming the stage, with the original error as ``cause``.
    """
    reports: list[RunReport] = []
    started = time.perf_counter()
    stage = "fit"
    try:
        if progress is not None:
            progress(stage)
        try:
            graph.fit(*splits.train)
        finally:
            _keep(reports, graph)
        stage = "forward"
        if progress is not None:
            progress(stage)
        try:
            prediction = graph.forward(splits.valid[0])
        finally:
            _keep(reports, graph)
        stage = "metric"
        if progress is not None:
            progress(stage)
        scores = {m.name: m.score(splits.valid[1], prediction) for m in metrics}
    except Exception as exc:
        raise EvaluationError(stage, exc, reports) from exc
    return Evaluation(
        metrics=scores,
        primary=metrics[0].name if metrics else "",
        prediction=prediction,
        target=splits.valid[1],
        reports=reports,
        duration_s=time.perf_counter() - started,
    )


def _keep(reports: list[RunReport], graph: Graph) -> None:
    # Graph.last_run is the run that just ended (also when it failed); a failure before
    # any node ran leaves the previous report, which must not be counted twice.
    report = graph.last_run
    if report is not None and (not reports or reports[-1] is not report):
        reports.append(report)
