"""Everything the TUI reads from (and the little it writes to) the knowledge base.

The knowledge base's SQLite connection belongs to the thread that opened it, so each
:class:`KBSession` owns one worker thread and one ``KnowledgeBase`` opened inside it; the UI
awaits calls on it and never blocks. The TUI keeps two sessions: one for the cheap reads and the
control commands, one for semantic search (whose first query loads the embedding model).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "KBSession",
    "LineDetail",
    "LineRow",
    "load_change_points",
    "load_line_detail",
    "load_lines",
]

T = TypeVar("T")


@dataclass(frozen=True)
class LineRow:
    """One research line as the lines pane shows it."""

    name: str
    metric: str
    direction: str
    description: str
    n_experiments: int
    best_value: float | None
    best_experiment_id: str | None
    trend: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class LineDetail:
    """The selected line: its experiments (oldest first), trajectory and change points."""

    line: LineRow
    experiments: tuple[Any, ...]
    trajectory: tuple[Any, ...]
    change_points: tuple[Any, ...]


def load_lines(kb: Any) -> list[LineRow]:
    """Summarise every research line of ``kb`` (cheap: no change-point detection)."""
    from soma.knowledge import summarize_line  # the one summary the CLI and tools show

    rows: list[LineRow] = []
    for line in kb.lines():
        summary = summarize_line(kb, line)
        rows.append(
            LineRow(
                name=line.name,
                metric=line.metric,
                direction=str(line.direction),
                description=line.description or "",
                n_experiments=summary.n_experiments,
                best_value=summary.best_value,
                best_experiment_id=summary.best_experiment_id,
                trend=summary.trend_name,
                values=summary.values,
            )
        )
    return rows


def load_line_detail(kb: Any, row: LineRow, *, change_points: bool = True) -> LineDetail:
    """Experiments, trajectory and (unless ``change_points`` is False) change points of a line.

    Change-point detection loads its libraries on first use (seconds), so the app first shows
    a line without them and adds them with :func:`load_change_points`.
    """
    experiments = kb.experiments(line=row.name, order="started")
    return LineDetail(
        line=row,
        experiments=tuple(experiments),
        trajectory=tuple(kb.trajectory(row.name)),
        change_points=tuple(kb.change_points(row.name)) if change_points else (),
    )


def load_change_points(kb: Any, name: str) -> tuple[Any, ...]:
    """The change points of line ``name``."""
    return tuple(kb.change_points(name))


@dataclass
class KBSession:
    """A knowledge base opened lazily in its own worker thread.

    Nothing is created on disk while the file does not exist: :meth:`call` then returns
    ``None``, so an empty or not-yet-created knowledge base simply shows nothing.
    """

    path: Path
    embedder: Any = "default"
    name: str = "reader"
    _executor: ThreadPoolExecutor = field(init=False, repr=False)
    _kb: Any = field(default=None, init=False, repr=False)
    _version_conn: sqlite3.Connection | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"soma-tui-{self.name}"
        )

    # -- runs inside the worker thread -------------------------------------------------------
    def _open(self) -> Any | None:
        if self._kb is None:
            if not self.path.exists():
                return None
            from soma.knowledge import KnowledgeBase

            self._kb = KnowledgeBase(self.path, embedder=self.embedder)
        return self._kb

    def _data_version(self) -> int | None:
        # PRAGMA data_version changes whenever another connection commits: a free way to know
        # whether the agent (or anyone) wrote since the last look, without reading any table.
        if self._version_conn is None:
            if not self.path.exists():
                return None
            self._version_conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=True
            )
        return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])

    def _shutdown(self) -> None:
        if self._version_conn is not None:
            self._version_conn.close()
            self._version_conn = None
        close = getattr(self._kb, "close", None)
        if callable(close):
            close()
        self._kb = None

    # -- called from the event loop ----------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Run ``fn(kb, *args)`` in the session thread; ``None`` while the KB file is absent."""

        def job() -> T | None:
            kb = self._open()
            return None if kb is None else fn(kb, *args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def data_version(self) -> int | None:
        """A number that changes after every commit by another connection (None: no file)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._data_version)

    def close(self) -> None:
        """Close the KB in its thread and let the thread end; never waits on a running call."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._shutdown)
        self._executor.shutdown(wait=False, cancel_futures=False)
