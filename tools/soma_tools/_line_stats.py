"""Per-line trajectory, trend and best value, computed once and reused until the line changes.

``KnowledgeBase.trajectory`` reads every experiment of the line; a line of a thousand
experiments costs tens of milliseconds, paid on every ``get_trajectory`` and
``list_research_lines`` call. This cache keeps the result while a cheap token stays the
same: a generation that every write through the tools bumps (exact for this process), the
line's experiment count, and the size and modification time of the knowledge base's files
(so other processes' writes count too).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LineStats", "LineStatsCache"]


@dataclass(frozen=True)
class LineStats:
    """A line's trajectory in ``metric`` with its trend, size and best point."""

    line: Any  # soma.knowledge.ResearchLine
    metric: str
    direction: str
    points: tuple[Any, ...]  # soma.knowledge.TrajectoryPoint, oldest first
    trend: str
    n_experiments: int

    @property
    def best_value(self) -> float | None:
        return float(self.points[-1].best_so_far) if self.points else None

    @property
    def best_experiment_id(self) -> str | None:
        return self.points[-1].best_experiment_id if self.points else None


def _file_signature(path: Path) -> tuple[int, ...]:
    sig: list[int] = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            st = candidate.stat()
        except OSError:
            sig.extend((0, 0))
        else:
            sig.extend((st.st_mtime_ns, st.st_size))
    return tuple(sig)


class LineStatsCache:
    """Thread-safe cache of :class:`LineStats` by (line, metric)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[tuple[Any, ...], LineStats]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget everything; every tool that writes experiments calls it."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def get(
        self, kb: Any, line: Any, metric: str | None = None, direction: str | None = None
    ) -> LineStats:
        """The stats of ``line`` (a ResearchLine) in ``metric`` (default: the line's)."""
        from soma.knowledge import classify_trend

        metric = metric or line.metric
        direction = direction or line.direction
        token = (
            self._generation,
            kb.count(line=line.name),
            _file_signature(Path(kb.path)) if str(kb.path) != ":memory:" else (),
        )
        key = (line.name, metric)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached[0] == token:
            return cached[1]
        if metric == line.metric:
            points = kb.trajectory(line.name)
        else:
            points = kb.trajectory(line.name, metric, direction=direction)
        trend = classify_trend([p.value for p in points], direction)
        stats = LineStats(
            line=line,
            metric=metric,
            direction=direction,
            points=tuple(points),
            trend=str(getattr(trend, "value", trend)),
            n_experiments=token[1],
        )
        with self._lock:
            if token[0] == self._generation:
                self._entries[key] = (token, stats)
        return stats
