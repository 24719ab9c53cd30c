"""Compile a Graph into an ExecutionPlan: a tree of Sequence, Parallel, Execute, Cached,
Loop and Branch steps that the executor walks for fit and forward alike.

The compiler checks the graph first (cycles, fan-in size against each filter's forward
signature, nodes left dangling by Python's ``>>``/``|`` precedence) and then decomposes
every region (the top level, each Branch arm, each Loop body) into series and parallel
parts: a node that every other node of its region depends on or feeds becomes a point of
the Sequence; independent parts become Parallel branches, so a slow branch delays only
the nodes that need it. Graphs that are not series-parallel fall back to a level split
(correct, with a barrier).
"""

from __future__ import annotations

import inspect
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from soma._control_flow import Branch as BranchFilter
from soma._control_flow import ControlStep
from soma._control_flow import Loop as LoopFilter
from soma.errors import GraphError

if TYPE_CHECKING:
    from soma.topology import Topology

__all__ = [
    "Branch",
    "Cached",
    "Execute",
    "ExecutionPlan",
    "GraphWarning",
    "Loop",
    "Parallel",
    "Remote",
    "Sequence",
    "Step",
    "compile_graph",
]


class GraphWarning(UserWarning):
    """A graph compiles but probably does not mean what was written (e.g. a dangling node)."""


# -- steps ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Execute:
    """Run one node (fit and/or forward)."""

    node: str


@dataclass(frozen=True, slots=True, eq=False)
class Cached:
    """Run one node, looking its state and output up in the cache first."""

    node: str


@dataclass(frozen=True, slots=True, eq=False)
class Remote:
    """Run one node on a cluster worker that matches ``placement`` (a soma.cluster
    Placement). ``cached``: the cache is consulted on the driver first, so a cached node
    never leaves it."""

    node: str
    placement: Any
    cached: bool

    def where(self) -> str:
        return self.placement.describe()


@dataclass(frozen=True, slots=True, eq=False)
class Sequence:
    """Steps one after another."""

    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Parallel:
    """Independent branches, run concurrently in the thread pool."""

    branches: tuple[Step, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Loop:
    """Repeat ``body`` up to ``max_iterations`` times (``until`` ends it earlier)."""

    node: str
    body: Step
    max_iterations: int
    until: Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True, eq=False)
class Branch:
    """Evaluate ``predicate`` on the input and run only the chosen arm."""

    node: str
    predicate: Callable[[Any], Any]
    arms: tuple[tuple[str, Step], ...]


Step = Execute | Cached | Remote | Sequence | Parallel | Loop | Branch

# Input modes: how a node's predecessor outputs become forward's positional arguments.
SINGLE, POSITIONAL, KEYED, VARIADIC = 0, 1, 2, 3


@dataclass(slots=True, eq=False)
class NodeSpec:
    """Everything the executor needs about a node, resolved once at compile time."""

    name: str
    filter: Any
    kind: str  # "filter" | "branch" | "loop"
    sources: tuple[Any, ...]  # store keys: predecessor names, or ("in", owner) for region roots
    mode: int
    fit_takes_y: bool
    stateless: bool
    cacheable: bool
    in_loop: bool
    fingerprint: str | None = None
    state_id: tuple[str, tuple[int, ...]] = ("", ())  # key of its state outside loops

    def __post_init__(self) -> None:
        self.state_id = (self.name, ())


@dataclass(slots=True, eq=False)
class Region:
    """The top level (owner None) or one arm/body of a Branch/Loop node."""

    owner: str | None
    label: str | None
    nodes: list[str]  # topological order
    leaves: list[str]
    step: Step | None = None


@dataclass(eq=False)
class ExecutionPlan:
    """A compiled graph. ``print(plan)`` shows the step tree."""

    root: Step
    nodes: dict[str, NodeSpec]
    regions: dict[tuple[str | None, str | None], Region]
    order: list[str]  # every node, topological (regions nested in place)
    warnings: list[str] = field(default_factory=list)

    @property
    def leaves(self) -> list[str]:
        return self.regions[(None, None)].leaves

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        lines: list[str] = []
        _render(self.root, 0, lines, self.nodes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ExecutionPlan {len(self.nodes)} nodes>"


def _render(step: Step, depth: int, lines: list[str], nodes: dict[str, NodeSpec]) -> None:
    pad = "  " * depth
    if isinstance(step, Execute | Cached):
        lines.append(f"{pad}{type(step).__name__}({step.node})")
    elif isinstance(step, Remote):
        cached = ", cached" if step.cached else ""
        lines.append(f"{pad}Remote({step.node} @ {step.where()}{cached})")
    elif isinstance(step, Sequence):
        if not step.steps:
            lines.append(f"{pad}Empty")
            return
        lines.append(f"{pad}Sequence:")
        for child in step.steps:
            _render(child, depth + 1, lines, nodes)
    elif isinstance(step, Parallel):
        lines.append(f"{pad}Parallel:")
        for child in step.branches:
            _render(child, depth + 1, lines, nodes)
    elif isinstance(step, Loop):
        until = " until" if step.until is not None else ""
        lines.append(f"{pad}Loop({step.node}, max={step.max_iterations}{until}):")
        _render(step.body, depth + 1, lines, nodes)
    elif isinstance(step, Branch):
        lines.append(f"{pad}Branch({step.node}):")
        for label, arm in step.arms:
            lines.append(f"{pad}  [{label}]:")
            _render(arm, depth + 2, lines, nodes)


# -- compiler ------------------------------------------------------------------------


def compile_graph(topology: Topology, *, cached: bool) -> ExecutionPlan:
    """Check a graph's ``topology`` and build its plan; ``cached`` wraps cacheable nodes in
    Cached."""
    from soma._decompose import decompose  # it imports the step classes from this module

    filters = topology.filters
    preds = topology.preds
    members: dict[tuple[str | None, str | None], list[str]] = {(None, None): []}
    for owner, arms in topology.arms.items():
        for label, names in arms.items():
            members[(owner, label)] = list(names)
    for name in filters:
        if name not in topology.owner:
            members[(None, None)].append(name)

    loop_members = _loop_members(topology)
    specs: dict[str, NodeSpec] = {}
    regions: dict[tuple[str | None, str | None], Region] = {}
    for key, names in members.items():
        order = _toposort(names, preds, topology.succs)
        leaves = [n for n in order if not topology.succs[n]]
        regions[key] = Region(key[0], key[1], order, leaves)
        for name in order:
            specs[name] = _node_spec(topology, name, key[0], name in loop_members)

    plan_warnings = _dangling_warnings(topology, regions[(None, None)])
    for region in regions.values():
        region.step = decompose(region.nodes, preds, topology.succs)

    steps_for: dict[str, Step] = {}

    def resolve(step: Step) -> Step:
        if isinstance(step, Execute):
            spec = specs[step.node]
            if spec.kind == "filter":
                placement = topology.placements.get(step.node)
                if placement is not None:
                    return Remote(step.node, placement, cached and spec.cacheable)
                return Cached(step.node) if cached and spec.cacheable else step
            return steps_for[step.node]
        if isinstance(step, Sequence):
            return Sequence(tuple(resolve(s) for s in step.steps))
        if isinstance(step, Parallel):
            return Parallel(tuple(resolve(s) for s in step.branches))
        return step

    # Inner regions first (deepest owners first) so composites can embed their arms.
    for owner in reversed(_composite_order(topology, regions)):
        control = filters[owner]
        arm_steps = tuple(
            (label, resolve(regions[(owner, label)].step))  # type: ignore[arg-type]
            for label in control.arms()
        )
        if isinstance(control, BranchFilter):
            steps_for[owner] = Branch(owner, control.predicate, arm_steps)
        else:
            assert isinstance(control, LoopFilter)
            steps_for[owner] = Loop(owner, arm_steps[0][1], control.max_iterations, control.until)
    root = resolve(regions[(None, None)].step)  # type: ignore[arg-type]
    order: list[str] = []
    _flatten_order(regions, None, None, order)
    return ExecutionPlan(root, specs, regions, order, plan_warnings)


def _flatten_order(regions: dict, owner: str | None, label: str | None, out: list[str]) -> None:
    for name in regions[(owner, label)].nodes:
        out.append(name)
        for key in regions:
            if key[0] == name:
                _flatten_order(regions, key[0], key[1], out)


def _composite_order(topology: Topology, regions: dict) -> list[str]:
    """Composite nodes, outermost first."""
    result: list[str] = []
    queue = deque([None])
    while queue:
        owner = queue.popleft()
        for (region_owner, _label), region in regions.items():
            if region_owner != owner:
                continue
            for name in region.nodes:
                if name in topology.arms and name not in result:
                    result.append(name)
                    queue.append(name)
    return result


def _loop_members(topology: Topology) -> set[str]:
    inside: set[str] = set()
    for name, (owner, _label) in topology.owner.items():
        cursor: str | None = owner
        while cursor is not None:
            if isinstance(topology.filters[cursor], LoopFilter):
                inside.add(name)
                break
            cursor = topology.owner.get(cursor, (None, None))[0]
    return inside


def _toposort(names: list[str], preds: dict, succs: dict) -> list[str]:
    member = set(names)
    indegree = {n: sum(1 for p in preds[n] if p in member) for n in names}
    ready = deque(n for n in names if indegree[n] == 0)
    order: list[str] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for succ in succs[node]:
            if succ in member:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
    if len(order) != len(names):
        raise GraphError(f"the graph has a cycle: {' -> '.join(_find_cycle(names, succs))}")
    return order


def _find_cycle(names: list[str], succs: dict) -> list[str]:
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = 1
        stack.append(node)
        for succ in succs[node]:
            if color.get(succ) == 1:
                return [*stack[stack.index(succ) :], succ]
            if succ not in color and (found := visit(succ)):
                return found
        stack.pop()
        color[node] = 2
        return None

    for name in names:
        if name not in color and (cycle := visit(name)):
            return cycle
    return names  # pragma: no cover - only called when a cycle exists


def _node_spec(topology: Topology, name: str, owner: str | None, in_loop: bool) -> NodeSpec:
    flt = topology.filters[name]
    node_preds = topology.preds[name]
    sources: tuple[Any, ...] = tuple(node_preds) if node_preds else (("in", owner),)
    is_control = isinstance(flt, ControlStep)
    arity = 1 if is_control else type(flt).input_arity()
    where = f"node {name!r} ({type(flt).__name__})"
    count = len(sources)
    if arity is None:
        mode = VARIADIC
    elif arity == 0:
        raise GraphError(f"{where}: forward must take at least one input before state")
    elif count == 1:
        if arity != 1:
            feeder = f"predecessor {node_preds[0]!r}" if node_preds else "the graph input"
            raise GraphError(
                f"{where}: forward takes {arity} inputs but receives one ({feeder}); "
                f"connect {arity} predecessors, or declare forward(self, x, state)"
            )
        mode = SINGLE
    elif arity == count:
        mode = POSITIONAL
    elif arity == 1:
        mode = KEYED  # one parameter behind several predecessors: a dict by predecessor name
    else:
        raise GraphError(
            f"{where}: forward takes {arity} inputs but has {count} predecessors "
            f"({', '.join(node_preds)}); connect exactly {arity}, or take one dict input "
            "(forward(self, x, state)) or any number (forward(self, *inputs, state))"
        )
    stateless = is_control or type(flt).is_stateless()
    fit_takes_y = True
    if not stateless:
        fit_takes_y = _fit_takes_y(type(flt), 1 if mode in (SINGLE, KEYED) else count, where)
    kind = "filter"
    if isinstance(flt, BranchFilter):
        kind = "branch"
    elif isinstance(flt, LoopFilter):
        kind = "loop"
    cacheable = bool(getattr(flt, "_soma_cacheable", True)) and not is_control
    return NodeSpec(name, flt, kind, sources, mode, fit_takes_y, stateless, cacheable, in_loop)


def _fit_takes_y(cls: type, inputs: int, where: str) -> bool:
    positional, variadic, has_y = _fit_signature(cls.fit)
    if variadic:
        return has_y
    if positional >= inputs + 1:
        return True
    if positional == inputs:
        return False
    raise GraphError(f"{where}: fit takes {positional} inputs but the node receives {inputs}")


@cache
def _fit_signature(fit: Any) -> tuple[int, bool, bool]:
    params = list(inspect.signature(fit).parameters.values())[1:]
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = sum(1 for p in params if p.kind in kinds)
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    has_y = any(p.name == "y" for p in params) or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params
    )
    return positional, variadic, has_y


def _dangling_warnings(topology: Topology, top: Region) -> list[str]:
    names = top.nodes
    if len(names) < 2:
        return []
    isolated = [n for n in names if not topology.preds[n] and not topology.succs[n]]
    if not isolated or len(isolated) == len(names):
        return []
    message = (
        f"node(s) {', '.join(repr(n) for n in isolated)} connect to nothing while the rest "
        "of the graph is connected. Python binds >> tighter than |: `A | B >> C` means "
        "`A | (B >> C)`, so A is left dangling. Write `(A | B) >> C` if C should receive "
        "both; forward now returns a dict with every leaf."
    )
    warnings.warn(message, GraphWarning, stacklevel=5)
    return [message]
