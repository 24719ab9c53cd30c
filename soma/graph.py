"""Graph: filters as nodes, data edges between them, fit and forward over the whole thing.

>>> from soma import Filter, Graph
>>> class Center(Filter):
...     def fit(self, x, y=None):
...         return sum(x) / len(x)
...     def forward(self, x, state):
...         return [v - state for v in x]
>>> class Scale(Filter):
...     factor = 2.0
...     def forward(self, x, state):
...         return [v * self.factor for v in x]
>>> g = Graph.somatize(Center() >> Scale(factor=10.0))
>>> g.fit([1.0, 2.0, 3.0]).forward([4.0])
[20.0]
>>> g.params
{'scale.factor': 10.0}
"""

from __future__ import annotations

import re
import threading
from typing import Any

from soma._control_flow import ControlStep
from soma._expr import Chain, Fork
from soma._graph_render import render_dot, render_mermaid, render_summary, render_text
from soma.cache import CacheStore
from soma.errors import GraphError, ParamError, ValidationError
from soma.events import EventCallback, RunReport
from soma.execute import StateKey, execute
from soma.execution import ExecutionBackend, ThreadBackend, default_workers
from soma.filter import Filter
from soma.fingerprint import combine, filter_fingerprint
from soma.plan import ExecutionPlan, compile_graph
from soma.space import SearchSpace
from soma.topology import Topology
from soma.training import Local, TrainingStrategy

__all__ = ["Graph"]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def _snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)  # HTTPLoader -> HTTP_Loader
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


class Graph:
    """A directed acyclic graph of filters. Build it with :meth:`node`/:meth:`connect` or
    :meth:`somatize`; run it with :meth:`fit`, :meth:`forward`, :meth:`fit_forward`."""

    def __init__(
        self,
        *,
        cache: CacheStore | None = None,
        max_workers: int | None = None,
        backend: ExecutionBackend | None = None,
        strategy: TrainingStrategy | None = None,
    ) -> None:
        self._cache = _check_cache(cache)
        self._backend = _check_backend(backend)
        self._own_backend: ExecutionBackend | None = None  # made on first use, see backend
        self._strategy = _check_strategy(strategy)
        self.max_workers = max_workers
        self._topology: Topology | None = None
        self._filters: dict[str, Filter] = {}
        self._preds: dict[str, list[str]] = {}
        self._succs: dict[str, list[str]] = {}
        self._edges: list[tuple[str, str]] = []
        self._owner: dict[str, tuple[str, str]] = {}  # node -> (Branch/Loop node, arm label)
        self._arms: dict[str, dict[str, list[str]]] = {}  # Branch/Loop node -> arm -> members
        self._next_suffix: dict[str, int] = {}  # auto-name counters: O(1) naming of long chains
        self._placements: dict[str, Any] = {}  # node -> soma.cluster Placement (Remote steps)
        self._callbacks: tuple[EventCallback, ...] = ()
        self._states: dict[StateKey, Any] = {}
        self._state_keys: dict[StateKey, str | None] = {}
        self._fitted = False
        self._plan: ExecutionPlan | None = None
        self._lock = threading.Lock()
        self.last_run: RunReport | None = None

    @property
    def cache(self) -> CacheStore | None:
        """The cache store results go through (None: no caching). Settable."""
        return self._cache

    @cache.setter
    def cache(self, cache: CacheStore | None) -> None:
        self._cache = _check_cache(cache)
        self._plan = None  # Cached steps depend on it

    @property
    def backend(self) -> ExecutionBackend:
        """Where parallel branches run (``soma.execution``). Settable; by default a thread
        pool of ``max_workers - 1`` threads (the calling thread is the last worker), made
        on first use and shared with this graph's copies."""
        if self._backend is not None:
            return self._backend
        backend = self._own_backend
        if backend is None:
            with self._lock:
                if self._own_backend is None:
                    workers = self.max_workers or default_workers()
                    self._own_backend = ThreadBackend(max(1, workers - 1))
                backend = self._own_backend
        return backend

    @backend.setter
    def backend(self, backend: ExecutionBackend | None) -> None:
        self._backend = _check_backend(backend)

    @property
    def strategy(self) -> TrainingStrategy:
        """How each node's fit is carried out (``soma.training``; default ``Local``)."""
        return self._strategy

    @strategy.setter
    def strategy(self, strategy: TrainingStrategy | None) -> None:
        self._strategy = _check_strategy(strategy)

    def with_strategy(self, strategy: Any) -> Graph:
        """A copy (same structure, cache and workers) fitted by ``strategy``: a
        ``soma.training`` strategy, its ``model_dump()`` data or JSON, or a kind name."""
        from soma.training import parse_strategy

        copy = self._copy()
        copy._strategy = _check_strategy(parse_strategy(strategy))
        return copy

    @property
    def max_workers(self) -> int | None:
        """Threads for parallel branches (None: one per CPU). Settable; must be >= 1."""
        return self._max_workers

    @max_workers.setter
    def max_workers(self, value: int | None) -> None:
        # Checked on every assignment, not only in __init__: a 0 or negative count set
        # later used to fall back silently to one thread per CPU or to sequential runs.
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValidationError("max_workers", f"expected an int >= 1, got {value!r}")
        self._max_workers = value
        self._own_backend = None  # sized by max_workers: made again on next use

    # -- building ------------------------------------------------------------------------

    @classmethod
    def somatize(
        cls,
        expr: Filter | Chain | Fork,
        *,
        cache: CacheStore | None = None,
        max_workers: int | None = None,
        backend: ExecutionBackend | None = None,
        strategy: TrainingStrategy | None = None,
    ) -> Graph:
        """A graph from an expression: ``a >> (b | c) >> d`` gives b and c a's output and d
        both (in fork order). Branch and Loop steps are expanded into their arms' nodes."""
        graph = cls(cache=cache, max_workers=max_workers, backend=backend, strategy=strategy)
        graph._add_expr(expr, [], None)
        graph.compile()  # report cycles, fan-in mismatches and dangling nodes now
        return graph

    def node(
        self,
        filter: Filter,
        name: str | None = None,
        *,
        resources: dict[str, Any] | None = None,
        tags: list[str] | str | None = None,
    ) -> str:
        """Add ``filter`` as a node and return its name (auto: snake_case of the class).

        ``resources`` (``{"GPU": 1, "CPU": 2, "memory": "4G"}``) and ``tags`` place the
        node on a cluster worker that has them (a Remote step; see :meth:`place`).
        """
        name = self._add_node(filter, name, None)
        if resources is not None or tags is not None:
            self.place(name, resources=resources, tags=tags)
        return name

    def place(
        self,
        node: str,
        *,
        resources: dict[str, Any] | None = None,
        tags: list[str] | str | None = None,
    ) -> None:
        """Run ``node`` on a cluster worker with ``resources`` and ``tags`` (None: anywhere).

        The compiled plan shows it as a Remote step; inside ``with lab.use():`` (or with a
        ``soma.execution.RayBackend``) it runs on the Lab's workers, else in this process.
        """
        if node not in self._filters:
            known = ", ".join(self._filters) or "none"
            raise GraphError(f"place: unknown node {node!r} (nodes: {known})")
        if isinstance(self._filters[node], ControlStep):
            raise GraphError(f"place: {node!r} is a Branch/Loop; place the nodes inside it")
        from soma.cluster._jobs import Placement  # Ray-free

        self._placements[node] = Placement(resources, tags)
        self._plan = None
        self._topology = None

    @property
    def placements(self) -> dict[str, Any]:
        """The nodes that asked for a worker, with their ``soma.cluster`` Placement."""
        return dict(self._placements)

    def connect(self, src: str, dst: str) -> None:
        """Feed ``src``'s output into ``dst``; the order of connects is the fan-in order."""
        for role, name in (("source", src), ("target", dst)):
            if name not in self._filters:
                known = ", ".join(self._filters) or "none"
                raise GraphError(f"connect: unknown {role} node {name!r} (nodes: {known})")
        if src == dst:
            raise GraphError(f"connect: node {src!r} cannot feed itself (a cycle)")
        if src in self._preds[dst]:
            raise GraphError(f"connect: {src!r} -> {dst!r} is already connected")
        if self._owner.get(src) != self._owner.get(dst):
            raise GraphError(
                f"connect: {src!r} and {dst!r} are in different regions "
                f"({self._region_name(src)} vs {self._region_name(dst)}); connect to the "
                "Branch/Loop node itself instead of the nodes inside its arms"
            )
        self._edges.append((src, dst))
        self._preds[dst].append(src)
        self._succs[src].append(dst)
        self._changed()

    def _region_name(self, name: str) -> str:
        owner = self._owner.get(name)
        return "top level" if owner is None else f"{owner[1]!r} arm of {owner[0]!r}"

    def _add_node(self, flt: Filter, name: str | None, owner: tuple[str, str] | None) -> str:
        if not isinstance(flt, Filter):
            hint = " (a class? pass an instance)" if isinstance(flt, type) else ""
            raise GraphError(f"node: expected a Filter instance, got {flt!r}{hint}")
        if name is None:
            base = _snake_case(type(flt).__name__)
            name, suffix = base, self._next_suffix.get(base, 2)
            while name in self._filters:
                name, suffix = f"{base}_{suffix}", suffix + 1
            self._next_suffix[base] = suffix
        else:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise GraphError(
                    f"node: name {name!r} must start with a letter or _ and hold only letters, "
                    "digits, _ and - (no dots: params are addressed as 'node.param')"
                )
            if name in self._filters:
                raise GraphError(f"node: a node named {name!r} already exists")
        self._filters[name] = flt
        self._preds[name] = []
        self._succs[name] = []
        if owner is not None:
            self._owner[name] = owner
            self._arms[owner[0]][owner[1]].append(name)
        if isinstance(flt, ControlStep):
            self._arms[name] = {label: [] for label in flt.arms()}
            for label, arm in flt.arms().items():
                if arm is not None:
                    self._add_expr(arm, [], (name, label))
        self._changed()
        return name

    def _add_expr(self, obj: Any, sources: list[str], owner: tuple[str, str] | None) -> list[str]:
        if isinstance(obj, Filter):
            name = self._add_node(obj, None, owner)
            for source in sources:
                self.connect(source, name)
            return [name]
        if isinstance(obj, Chain):
            cursor = sources
            for step in obj.steps:
                cursor = self._add_expr(step, cursor, owner)
            return cursor
        if isinstance(obj, Fork):
            ends: list[str] = []
            for branch in obj.branches:
                ends.extend(self._add_expr(branch, sources, owner))
            return ends
        raise GraphError(
            f"somatize: expected a Filter, chain or fork, got {type(obj).__name__} {obj!r}"
        )

    def _changed(self) -> None:
        self._plan = None
        self._topology = None
        self._states, self._state_keys, self._fitted = {}, {}, False

    # -- structure -----------------------------------------------------------------------

    @property
    def topology(self) -> Topology:
        """The graph's structure as one frozen value (what the compiler and renderers read)."""
        topology = self._topology
        if topology is None:
            topology = Topology.of(
                self._filters, self._preds, self._succs, self._edges, self._owner, self._arms,
                self._placements,
            )  # fmt: skip
            self._topology = topology
        return topology

    @property
    def nodes(self) -> dict[str, Filter]:
        return dict(self._filters)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return list(self._edges)

    @property
    def roots(self) -> list[str]:
        return [n for n in self._filters if n not in self._owner and not self._preds[n]]

    @property
    def leaves(self) -> list[str]:
        return [n for n in self._filters if n not in self._owner and not self._succs[n]]

    def __len__(self) -> int:
        return len(self._filters)

    def __repr__(self) -> str:
        fitted = ", fitted" if self._fitted else ""
        return f"Graph({len(self._filters)} nodes, {len(self._edges)} edges{fitted})"

    def compile(self) -> ExecutionPlan:
        """Check the graph and return its (memoized) execution plan."""
        plan = self._plan
        if plan is None:
            with self._lock:
                if self._plan is None:
                    self._plan = compile_graph(self.topology, cached=self.cache is not None)
                plan = self._plan
        return plan

    # -- running -------------------------------------------------------------------------

    def fit(self, x: Any, y: Any = None) -> Graph:
        """Fit every node in topological order (each sees its upstream forward outputs)."""
        self._run(x, y, fitting=True, want_output=False)
        return self

    def fit_forward(self, x: Any, y: Any = None) -> Any:
        """Fit, and return the forward output on the training data (one walk)."""
        return self._run(x, y, fitting=True, want_output=True)

    def forward(self, x: Any) -> Any:
        """The leaves' outputs on ``x``: one leaf -> its value, several -> dict by name."""
        plan = self.compile()
        if not self._fitted:
            for name in plan.regions[(None, None)].nodes:
                if not plan.nodes[name].stateless:
                    raise GraphError(
                        f"forward before fit: node {name!r} ({type(self._filters[name]).__name__})"
                        " learns a state; call fit(x, y) first"
                    )
        return self._run(x, None, fitting=False, want_output=True)

    def _run(self, x: Any, y: Any, *, fitting: bool, want_output: bool) -> Any:
        plan = self.compile()
        if self._strategy.runs_graph:  # ModelParallel: the strategy runs the whole graph
            result = self._strategy.run_graph(self, x, y, fitting=fitting, want_output=want_output)
            if fitting:
                self._states, self._state_keys, self._fitted = (
                    result.states,
                    result.state_keys,
                    True,
                )
            self.last_run = result.report
            return result.output
        try:
            result = execute(
                plan,
                x=x,
                y=y,
                fitting=fitting,
                want_output=want_output,
                states=self._states,
                state_keys=self._state_keys,
                cache=self.cache,
                callbacks=self._callbacks,
                max_workers=self.max_workers,
                backend=self.backend,
                strategy=self._strategy,
            )
        except Exception as exc:
            report = getattr(exc, "__soma_report__", None)
            if report is not None:
                self.last_run = report
            raise
        if fitting:
            self._states, self._state_keys, self._fitted = result.states, result.state_keys, True
        self.last_run = result.report
        return result.output

    @property
    def states(self) -> dict[str, Any]:
        """Fitted state per node (None for stateless nodes; a list per iteration in Loops)."""
        result: dict[str, Any] = {}
        for name in self._filters:
            if isinstance(self._filters[name], ControlStep):
                continue
            entries = sorted((path, s) for (node, path), s in self._states.items() if node == name)
            if not entries:
                result[name] = None
            elif entries[0][0] == ():
                result[name] = entries[0][1]
            else:
                result[name] = [s for _path, s in entries]
        return result

    def stream(self, chunks: Any, **options: Any) -> Any:
        """Run over an iterable of chunks, one at a time: a ``soma.data.Stream`` to iterate
        (per-node modes fixed/evolving/barrier, ``fit=``, checkpoints, a per-stream cache)."""
        from soma.data._stream import Stream

        return Stream(self, chunks, **options)

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def on_event(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every run and node event (see soma.events)."""
        if not callable(callback):
            raise ValidationError("callback", f"expected a callable, got {callback!r}")
        self._callbacks = (*self._callbacks, callback)

    # -- parameters ----------------------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        """Every hyperparameter as ``{"node.param": value}``."""
        return {
            f"{name}.{param}": value
            for name, flt in self._filters.items()
            for param, value in flt.params.items()
        }

    def search_space(self) -> dict[str, SearchSpace]:
        """Declared search spaces as ``{"node.param": space}``."""
        return {
            f"{name}.{param}": space
            for name, flt in self._filters.items()
            for param, space in flt.search_space().items()
        }

    def with_params(self, params: dict[str, Any]) -> Graph:
        """A copy (same structure, cache and worker count) with some parameters changed."""
        if not isinstance(params, dict):
            raise ValidationError("params", f"expected a dict of 'node.param' keys, got {params!r}")
        changes: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            node, dot, param = str(key).partition(".")
            if not dot or node not in self._filters:
                known = ", ".join(self.params) or "none"
                raise ParamError(
                    f"unknown parameter {key!r}: expected 'node.param' (known: {known})"
                )
            if param not in self._filters[node].param_declarations():
                known = ", ".join(self._filters[node].param_declarations()) or "none"
                raise ParamError(
                    f"unknown parameter {key!r}: node {node!r} "
                    f"({type(self._filters[node]).__name__}) has {known}"
                )
            changes.setdefault(node, {})[param] = value
        copy = self._copy()
        for node, values in changes.items():
            try:
                copy._filters[node] = self._filters[node].with_params(**values)
            except ParamError as exc:
                raise ParamError(f"node {node!r}: {exc}") from exc
        copy._topology = None  # its filters changed
        return copy

    def with_filter(self, node: str, new_filter: Filter) -> Graph:
        """A copy with one node's filter replaced (same name, same edges)."""
        if node not in self._filters:
            raise GraphError(
                f"with_filter: unknown node {node!r} (nodes: {', '.join(self._filters)})"
            )
        if not isinstance(new_filter, Filter) or isinstance(new_filter, ControlStep):
            raise GraphError("with_filter: expected a Filter instance (not a Branch/Loop)")
        if isinstance(self._filters[node], ControlStep):
            raise GraphError(f"with_filter: {node!r} is a Branch/Loop; rebuild the graph instead")
        copy = self._copy()
        copy._filters[node] = new_filter
        copy._topology = None
        copy.compile()  # fan-in against the new forward signature
        return copy

    def _copy(self) -> Graph:
        copy = Graph(
            cache=self.cache,
            max_workers=self.max_workers,
            backend=self._backend,
            strategy=self._strategy,
        )
        copy._own_backend = self._own_backend  # same size: share the pool
        copy._filters = dict(self._filters)
        copy._preds = {k: list(v) for k, v in self._preds.items()}
        copy._succs = {k: list(v) for k, v in self._succs.items()}
        copy._edges = list(self._edges)
        copy._owner = dict(self._owner)
        copy._next_suffix = dict(self._next_suffix)
        copy._placements = dict(self._placements)
        copy._arms = {
            k: {label: list(v) for label, v in arms.items()} for k, arms in self._arms.items()
        }
        return copy

    # -- pickling (a graph shipped to a cluster worker) -----------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Structure, filters, placements and fitted states travel; the cache, an
        in-process backend, listeners and the lock stay here (a worker has its own)."""
        state = self.__dict__.copy()
        state.update(_lock=None, _own_backend=None, _plan=None, _cache=None, _callbacks=())
        if self._backend is not None and self._backend.in_process:
            state["_backend"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- identity and rendering ----------------------------------------------------------

    def fingerprint(self) -> str:
        """Code + parameter fingerprint of the whole graph (hex)."""
        topology = self.topology
        parts = []
        for name, flt in topology.filters.items():
            parts.append(f"{name}={filter_fingerprint(flt)}")
            owner = topology.owner.get(name)
            if owner is not None:
                parts.append(f"{name}@{owner[0]}/{owner[1]}")
        parts.extend(f"{a}->{b}" for a, b in topology.edges)
        return combine("graph", *parts)

    def to_mermaid(self) -> str:
        return render_mermaid(self)

    def to_dot(self) -> str:
        return render_dot(self)

    def to_text(self) -> str:
        return render_text(self)

    def summary(self) -> str:
        return render_summary(self)

    def __str__(self) -> str:
        return self.to_text()


def _check_cache(cache: Any) -> CacheStore | None:
    if cache is not None and not isinstance(cache, CacheStore):
        raise ValidationError(
            "cache", f"expected a soma.Cache (or a soma.cache.CacheStore) or None, got {cache!r}"
        )
    return cache


def _check_backend(backend: Any) -> ExecutionBackend | None:
    if backend is not None and not isinstance(backend, ExecutionBackend):
        raise ValidationError(
            "backend", f"expected a soma.execution.ExecutionBackend or None, got {backend!r}"
        )
    return backend


_LOCAL = Local()


def _check_strategy(strategy: Any) -> TrainingStrategy:
    if strategy is None:
        return _LOCAL
    if not isinstance(strategy, TrainingStrategy):
        raise ValidationError(
            "strategy", f"expected a soma.training.TrainingStrategy or None, got {strategy!r}"
        )
    return strategy
