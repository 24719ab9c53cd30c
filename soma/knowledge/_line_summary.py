"""One research line at a glance: size, best experiment and value, trend, latest experiment.

The CLI's ``soma kb lines``, the tools' ``list_research_lines`` (and the MCP server and the
agent through them) and the TUI's line list all show this, so it is computed here once,
from one read of the line's experiments.

>>> from soma.knowledge import KnowledgeBase, HashingEmbedder, Experiment
>>> kb = KnowledgeBase(":memory:", embedder=HashingEmbedder())
>>> _ = kb.create_line("digits", metric="mse", direction="minimize")
>>> for v in (0.5, 0.3, 0.4):
...     _ = kb.record(Experiment(name=f"e{v}", line="digits", metrics={"mse": v}))
>>> s = summarize_line(kb, "digits")
>>> s.n_experiments, s.best_value, s.best.name, s.last.name, s.trend_name
(3, 0.3, 'e0.3', 'e0.4', 'unknown')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from soma.knowledge._analytics import classify_trend, resolve_metric, trajectory
from soma.knowledge._records import Experiment, ResearchLine, TrajectoryPoint, Trend
from soma.vocabulary import Direction

if TYPE_CHECKING:
    from soma.knowledge._kb import KnowledgeBase

__all__ = ["LineSummary", "summarize_line"]


@dataclass(frozen=True)
class LineSummary:
    """A line's trajectory in ``metric`` with its trend, size, best and latest experiment.

    ``points`` are the successful experiments that measured ``metric``, oldest first, each
    with the best value so far; ``best`` is the best of them (the earliest wins a tie),
    ``last`` the most recently started experiment of the line (any status).
    """

    line: ResearchLine
    metric: str
    direction: Direction
    points: tuple[TrajectoryPoint, ...]
    trend: Trend
    n_experiments: int
    best: Experiment | None
    last: Experiment | None

    @property
    def best_value(self) -> float | None:
        return float(self.points[-1].best_so_far) if self.points else None

    @property
    def best_experiment_id(self) -> str | None:
        return self.points[-1].best_experiment_id if self.points else None

    @property
    def trend_name(self) -> str:
        """``"improving"``, ``"plateaued"``, ``"declining"`` or ``"unknown"``."""
        return self.trend.value

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(float(p.value) for p in self.points)


def summarize_line(
    kb: KnowledgeBase,
    line: str | ResearchLine,
    metric: str | None = None,
    *,
    direction: str | None = None,
) -> LineSummary:
    """The summary of ``line`` (a name or a ResearchLine) in ``metric`` (default: the line's;
    another metric needs its ``direction``, as for :meth:`KnowledgeBase.trajectory`)."""
    ln = kb.get_line(line) if isinstance(line, str) else line
    metric, way = resolve_metric(ln, metric, direction)
    experiments = kb.experiments(line=ln.name)  # oldest first: the trajectory's order
    points = tuple(trajectory(experiments, metric, way))
    best_id = points[-1].best_experiment_id if points else None
    return LineSummary(
        line=ln,
        metric=metric,
        direction=Direction(way),
        points=points,
        trend=classify_trend([p.value for p in points], way),
        n_experiments=len(experiments),
        best=next((e for e in experiments if e.id == best_id), None),
        last=experiments[-1] if experiments else None,
    )
