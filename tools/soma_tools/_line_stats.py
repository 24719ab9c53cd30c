"""Per-line summaries (:func:`soma.knowledge.summarize_line`), computed once and reused until
the line changes.

``KnowledgeBase.trajectory`` reads every experiment of the line; a line of a thousand
experiments costs tens of milliseconds, paid on every ``get_trajectory`` and
``list_research_lines`` call. This cache keeps the result while a cheap token stays the
same: a generation that every write through the tools bumps (exact for this process), the
line's experiment count, and the size and modification time of the knowledge base's files
(so other processes' writes count too).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from soma.knowledge import LineSummary, summarize_line

__all__ = ["LineStats", "LineStatsCache"]


#: What the tools keep per line: the knowledge base's one line summary.
LineStats = LineSummary


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
        metric = metric or line.metric
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
        other = metric != line.metric  # another metric: its direction from the caller
        stats = summarize_line(kb, line, metric, direction=direction if other else None)
        with self._lock:
            if token[0] == self._generation:
                self._entries[key] = (token, stats)
        return stats
