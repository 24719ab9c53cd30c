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
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.errors import ProjectError, SomaError
from soma_tools._errors import ToolError
from soma_tools._line_stats import LineStats, LineStatsCache

if TYPE_CHECKING:
    from soma.cache import Cache
    from soma.execution import Limits, ProcessBackend
    from soma.experiments import Evaluation
    from soma.knowledge import KnowledgeBase, ResearchLine
    from soma.project import FilterCatalog, Project, Splits

__all__ = ["ToolContext", "seed_globals"]


def seed_globals(seed: int) -> None:
    """Seed ``random`` and numpy's global generator (what a run's ``seed`` promises)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)


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
        self._workers: ProcessBackend | None = None
        self._data_generation = 0  # bumped by reload_data: workers load the data again
        self._guarded: dict[str, dict[str, str]] = {}  # filters fingerprint -> files skipped
        if self._project is not None:
            self._guarded_project(self._project)
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

                    self._project = self._guarded_project(load_project(Path(self._project_arg)))
        return self._project

    def _guarded_project(self, project: Project) -> Project:
        if project.config.limits.workers:
            # Filter files are imported in a worker first: one whose import hangs or ends
            # the process is never imported in this one.
            project.import_guard = self._import_guard
        return project

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
        """The project's data, loaded once per context (``reload_data`` to read it again).

        With workers (``[limits] workers``, the default) the loader runs in a worker
        process; its failure (an exception, ``sys.exit``, a crash, a limit) is a
        ProjectError naming the loader, and this process goes on.
        """
        if self._splits is None:
            with self._lock:
                if self._splits is None:
                    self._splits = self._load_splits()
        return self._splits

    def _load_splits(self) -> Splits:
        workers = self.workers
        if workers is None:
            return self.project.load_data()
        from soma.project._isolated import DataLoadFailed, load_splits_isolated

        try:
            return load_splits_isolated(
                workers, self.root, generation=self._data_generation, limits=self.limits()
            )
        except DataLoadFailed as exc:
            cause = exc.cause
            error = ProjectError(
                f"{self.project.config.data} raised {type(cause).__name__}: {cause}"
            )
            raise error from cause

    def reload_data(self) -> None:
        """Forget the loaded data; the next run calls the project's loader again."""
        with self._lock:
            self._splits = None
            self._data_generation += 1

    # -- user code in worker processes ----------------------------------------------------

    @property
    def workers(self) -> ProcessBackend | None:
        """The worker processes user code runs in (None: ``[limits] workers = 0``)."""
        count = self.project.config.limits.workers
        if not count:
            return None
        if self._workers is None:
            with self._lock:
                if self._workers is None:
                    from soma.execution import ProcessBackend

                    workers = ProcessBackend(count)
                    # A context dropped without close() must not leave idle workers behind
                    # (each holds the libraries and the data) for the rest of the process.
                    weakref.finalize(self, workers.shutdown, False)
                    self._workers = workers
        return self._workers

    def limits(self, timeout_s: float | None = None, memory_mb: int | None = None) -> Limits:
        """The project's ``[limits]``, with a call's own limits taking precedence."""
        from soma.execution import Limits

        config = self.project.config.limits
        return Limits(
            timeout_s if timeout_s is not None else config.timeout_s,
            memory_mb if memory_mb is not None else config.memory_mb,
        )

    def evaluate(
        self,
        graph: Any,
        metrics: list[Any],
        *,
        seed: int | None = None,
        limits: Limits | None = None,
        progress: Any = None,
        what: str = "the evaluation",
    ) -> tuple[Evaluation, str | None]:
        """``soma.experiments.evaluate`` of ``graph`` on the project's data, in a worker
        process under ``limits`` (or here when workers are off); with the data fingerprint."""
        workers = self.workers
        if workers is None:
            from soma.experiments import evaluate

            splits = self.splits()
            if seed is not None:
                seed_globals(seed)
            return evaluate(graph, splits, metrics, progress=progress), splits.fingerprint
        from soma.project._isolated import evaluate_isolated
        from soma.study._intermediate import relay

        # Inside a study trial: soma.study.report in a filter reaches this trial's pruner.
        around, on_ask = relay() or (None, None)
        return evaluate_isolated(
            workers,
            self.root,
            graph,
            metrics,
            seed=seed,
            generation=self._data_generation,
            limits=limits if limits is not None else self.limits(),
            progress=progress,
            what=what,
            skip=next(iter(self._guarded.values()), None),  # the folder's current state
            around=around,
            on_ask=on_ask,
        )

    def _import_guard(self, fingerprint: str) -> dict[str, str]:
        skip = self._guarded.get(fingerprint)
        if skip is None:
            from soma.project._isolated import probe_filters

            workers = self.workers
            assert workers is not None
            timeout = self.project.config.limits.import_timeout_s
            skip = probe_filters(workers, self.project, timeout_s=timeout)
            self._guarded = {fingerprint: skip}  # only the folder's current state matters
        return skip

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
        """Stop the worker processes; close the knowledge base if this context opened it."""
        workers, self._workers = self._workers, None
        if workers is not None:
            workers.shutdown(wait=False)
        kb = self._kb if self._owns_kb else None
        close = getattr(kb, "close", None)
        if callable(close):
            with contextlib.suppress(SomaError):  # closing is best effort at shutdown
                close()

    def __repr__(self) -> str:
        where = self._project.root if self._project is not None else self._project_arg
        return f"ToolContext({str(where)!r})"
