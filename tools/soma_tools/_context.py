"""ToolContext: one research project and what the tools share across calls.

The project, its knowledge base, its cache and its data are created on first use and
reused by every later call (the MCP server keeps one context for its whole life; the agent
keeps one per run). Creating a context is cheap and touches nothing on disk.

>>> from soma_tools import ToolContext
>>> ctx = ToolContext("my-research")      # doctest: +SKIP
>>> ctx.project.name, ctx.default_line    # doctest: +SKIP
('my-research', 'my-research')
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.errors import SomaError
from soma_tools._errors import ToolError
from soma_tools._line_stats import LineStats, LineStatsCache

if TYPE_CHECKING:
    from soma.cache import Cache
    from soma.knowledge import KnowledgeBase, ResearchLine
    from soma.project import FilterCatalog, Project, Splits

__all__ = ["ToolContext"]


class ToolContext:
    """The project directory's loaded Project, KnowledgeBase, shared Cache and data splits.

    ``kb`` and ``cache`` may be given to share existing objects (the agent does); otherwise
    they are opened at the project's configured paths. ``embedder`` is passed to the
    KnowledgeBase ("default" = all-MiniLM-L6-v2, offline).
    """

    def __init__(
        self,
        project: str | Path | Project = ".",
        *,
        kb: KnowledgeBase | None = None,
        cache: Cache | None = None,
        embedder: Any = "default",
    ) -> None:
        self._project_arg = project
        self._project: Project | None = None if isinstance(project, str | Path) else project
        self._kb = kb
        self._owns_kb = kb is None  # a KnowledgeBase passed in stays the caller's to close
        self._cache = cache
        self._embedder = embedder
        self._splits: Splits | None = None
        self._lock = threading.RLock()
        #: Serialises writes to the filters folder (two writers must not interleave backups).
        self.write_lock = threading.Lock()
        #: Trajectories, trends and bests per line, reused until the line changes.
        self.line_stats = LineStatsCache()

    # -- lazily created shared objects ----------------------------------------------------

    @property
    def project(self) -> Project:
        """The loaded project (soma.toml validated on first access)."""
        if self._project is None:
            with self._lock:
                if self._project is None:
                    from soma.project import load_project

                    self._project = load_project(Path(self._project_arg))
        return self._project

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def kb(self) -> KnowledgeBase:
        """The project's knowledge base (opened on first access)."""
        if self._kb is None:
            with self._lock:
                if self._kb is None:
                    from soma.knowledge import KnowledgeBase

                    self._kb = KnowledgeBase(
                        self.project.kb_path,
                        embedder=self._embedder,
                        backend=self.project.kb_backend,  # [kb] backend of soma.toml
                    )
        return self._kb

    @property
    def cache(self) -> Cache:
        """The cache every pipeline and study of this context shares."""
        if self._cache is None:
            with self._lock:
                if self._cache is None:
                    from soma.cache import Cache

                    self._cache = Cache(self.project.cache_dir)
        return self._cache

    def catalog(self, *, refresh: bool = False) -> FilterCatalog:
        """The filters folder's catalog (re-imported when a file changed, or on refresh)."""
        return self.project.discover_filters(refresh=refresh)

    def cluster(self) -> Any:
        """The Lab of the project's ``[cluster] address`` (soma.toml), or None: run here.
        Connected once per process; a refused token or a silent coordinator is a ToolError."""
        address = self.project.config.cluster.address
        if address is None:
            return None
        from soma.cluster import ClusterError
        from soma.cluster.lab import project_lab

        try:
            return project_lab(address)
        except ClusterError as exc:
            from soma_tools._errors import ToolError

            raise ToolError(f"the project's cluster ([cluster] address): {exc}") from None

    def splits(self) -> Splits:
        """The project's data, loaded once per context (``reload_data`` to read it again)."""
        if self._splits is None:
            with self._lock:
                if self._splits is None:
                    self._splits = self.project.load_data()
        return self._splits

    def reload_data(self) -> None:
        """Forget the loaded data; the next run calls the project's loader again."""
        with self._lock:
            self._splits = None

    # -- research lines -------------------------------------------------------------------

    @property
    def default_line(self) -> str:
        """The line experiments go to when none is named: the project's name."""
        return self.project.name

    def resolve_line(self, name: str | None, *, field: str = "research_line") -> ResearchLine:
        """The named research line; the default line is created on first use, others must exist."""
        from soma.errors import KnowledgeBaseError

        wanted = name or self.default_line
        kb = self.kb
        try:
            return kb.get_line(wanted)
        except KnowledgeBaseError:
            if wanted != self.default_line:
                known = ", ".join(sorted(line.name for line in kb.lines())) or "none yet"
                raise ToolError(
                    f"unknown research line {wanted!r} (known: {known}); create it with "
                    f"create_research_line or omit {field} to use the default line "
                    f"{self.default_line!r}",
                    field=field,
                ) from None
        with self._lock:
            try:
                return kb.get_line(wanted)
            except KnowledgeBaseError:
                metric = self.project.metric
                return kb.create_line(
                    wanted,
                    metric=metric.name,
                    direction=metric.direction,
                    description=self.project.config.description
                    or f"Default research line of project {self.project.name}",
                )

    def stats(self, line: ResearchLine, metric: str | None = None) -> LineStats:
        """The line's trajectory, trend, size and best in ``metric`` (cached until it changes).

        A metric other than the line's takes its direction from soma.toml.
        """
        direction = None
        if metric is not None and metric != line.metric:
            known = {m.name: m.direction for m in self.project.metrics}
            if metric not in known:
                raise ToolError(
                    f"the project computes no metric {metric!r} (soma.toml metrics: "
                    f"{', '.join(known)})",
                    field="metric",
                )
            direction = known[metric]
        return self.line_stats.get(self.kb, line, metric, direction)

    def close(self) -> None:
        """Close the knowledge base if this context opened it."""
        kb = self._kb if self._owns_kb else None
        close = getattr(kb, "close", None)
        if callable(close):
            with contextlib.suppress(SomaError):  # closing is best effort at shutdown
                close()

    def __repr__(self) -> str:
        where = self._project.root if self._project is not None else self._project_arg
        return f"ToolContext({str(where)!r})"
