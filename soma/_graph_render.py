"""Text, Mermaid and Graphviz renderings of a Graph, and its one-line summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soma._control_flow import Branch as BranchFilter
from soma._control_flow import ControlStep, _describe
from soma._control_flow import Loop as LoopFilter
from soma.plan import Branch, Cached, Execute, Loop, Parallel, Remote, Sequence, Step

if TYPE_CHECKING:
    from soma.graph import Graph

__all__ = ["render_dot", "render_mermaid", "render_summary", "render_text"]


def _label(flt: Any) -> str:
    """``PCA(n_components=16)``; ``StandardScale`` when there are no parameters."""
    if isinstance(flt, BranchFilter):
        return f"Branch({_describe(flt.predicate)})"
    if isinstance(flt, LoopFilter):
        until = f", until={_describe(flt.until)}" if flt.until is not None else ""
        return f"Loop(max_iterations={flt.max_iterations}{until})"
    params = flt.params
    if not params:
        return type(flt).__name__
    return f"{type(flt).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _placed(topology: Any, name: str) -> str:
    """`` @ GPU=1, tag:gpu`` for a node placed on a cluster worker (a Remote step)."""
    placement = topology.placements.get(name)
    return f" @ {placement.describe()}" if placement is not None else ""


def _trained(graph: Graph) -> dict[str, str]:
    """Where the training strategy trains each node (empty under Local): `` ⇉ 2 replicas,
    1/2 of the rows each`` for DataParallel, the worker of its stage for ModelParallel."""
    strategy = graph.strategy
    if strategy.cache_token() is None:  # Local
        return {}
    try:
        specs = graph.compile().nodes
        learning = [n for n, spec in specs.items() if not spec.stateless]
        nodes = list(specs) if strategy.runs_graph else learning
    except Exception:  # a graph that does not compile: no placement to show
        return {}
    return strategy.placement(nodes)


# -- text ----------------------------------------------------------------------------


def render_text(graph: Graph) -> str:
    """``Graph (N nodes, E edges)`` then one tree line per node, in topological order."""
    topology = graph.topology
    lines = [f"Graph ({len(topology.filters)} nodes, {len(topology.edges)} edges)"]
    trained = _trained(graph)
    if trained:
        lines.append(f"strategy: {graph.strategy.describe()}")
    try:
        order = graph.compile().order
    except Exception:  # a cycle: show the header and the nodes in insertion order
        order = list(topology.filters)
    # A node closes its region (the top level, or one arm of a Branch/Loop) when no later
    # node shares that region.
    last_in_region = {topology.owner.get(name): name for name in order}
    for name in order:
        depth = 0
        cursor = topology.owner.get(name)
        while cursor is not None:
            depth += 1
            cursor = topology.owner.get(cursor[0])
        branch = "└── " if last_in_region[topology.owner.get(name)] == name else "├── "
        where = ""
        owner = topology.owner.get(name)
        if owner is not None and name == topology.arms[owner[0]][owner[1]][0]:
            where = f" [{owner[1]} of {owner[0]}]"
        preds = topology.preds[name]
        arrow = f" ← {', '.join(preds)}" if preds else ""
        placed = _placed(topology, name)
        if name in trained:
            placed += f" ⇉ {trained[name]}"
        lines.append(
            f"{'    ' * depth}{branch}{name} ({_label(topology.filters[name])}){placed}{where}"
            f"{arrow}"
        )
    return "\n".join(lines)


# -- mermaid -------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label only '"' needs escaping (as an entity); < and > are
    # escaped too so labels never turn into HTML, and '#' first, since Mermaid reads
    # '#...;' in a label as an entity ('#quot;' in a string param would become '"').
    return (
        text.replace("#", "#35;")
        .replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
    )


def render_mermaid(graph: Graph) -> str:
    """A ``flowchart LR``; node ids are ``n0, n1, ...`` (names are labels, so any name is safe)."""
    topology = graph.topology
    ids = {name: f"n{i}" for i, name in enumerate(topology.filters)}
    lines = ["flowchart LR"]
    trained = _trained(graph)
    if trained:
        lines.append(f"    %% strategy: {graph.strategy.describe()}")

    def emit_region(owner: str | None, label: str | None, indent: str) -> None:
        for name in topology.region(owner, label):
            flt = topology.filters[name]
            shown = f"{name}<br/>{_label(flt)}"
            if name in topology.placements:  # a Remote step: where it may run
                shown += f"<br/>remote{_placed(topology, name)}"
            if name in trained:  # where the training strategy trains it
                shown += f"<br/>⇉ {trained[name]}"
            text = _mermaid_text(shown).replace("#lt;br/#gt;", "<br/>")
            if isinstance(flt, BranchFilter):
                lines.append(f'{indent}{ids[name]}{{"{text}"}}')
            elif isinstance(flt, LoopFilter):
                lines.append(f'{indent}{ids[name]}(("{text}"))')
            else:
                lines.append(f'{indent}{ids[name]}["{text}"]')
            if isinstance(flt, ControlStep):
                for arm in flt.arms():
                    sub = f"{ids[name]}_{arm}"
                    lines.append(f'{indent}subgraph {sub} ["{_mermaid_text(f"{name}: {arm}")}"]')
                    lines.append(f"{indent}    direction LR")
                    members = topology.arms[name][arm]
                    if members:
                        emit_region(name, arm, indent + "    ")
                    else:
                        lines.append(f'{indent}    {sub}_pass["(pass through)"]')
                    lines.append(f"{indent}end")

    emit_region(None, None, "    ")
    for src, dst in topology.edges:
        lines.append(f"    {ids[src]} --> {ids[dst]}")
    if topology.placements:
        lines.append("    classDef remote stroke-dasharray: 5 5")
        lines.append(f"    class {','.join(ids[n] for n in topology.placements)} remote")
    for name, arms in topology.arms.items():
        for arm, members in arms.items():
            entry = [m for m in members if not topology.preds[m]] or [f"{ids[name]}_{arm}_pass"]
            for target in entry:
                target_id = ids.get(target, target)
                lines.append(f"    {ids[name]} -->|{arm}| {target_id}")
            exits = [m for m in members if not topology.succs[m]] or [f"{ids[name]}_{arm}_pass"]
            back = "repeat" if isinstance(topology.filters[name], LoopFilter) else "result"
            for source in exits:
                lines.append(f"    {ids.get(source, source)} -.->|{back}| {ids[name]}")
    return "\n".join(lines)


# -- graphviz ------------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(graph: Graph) -> str:
    topology = graph.topology
    lines = ["digraph G {", "    rankdir=LR;"]

    def emit_region(owner: str | None, label: str | None, indent: str) -> None:
        for name in topology.region(owner, label):
            flt = topology.filters[name]
            shape = "box"
            if isinstance(flt, BranchFilter):
                shape = "diamond"
            elif isinstance(flt, LoopFilter):
                shape = "ellipse"
            text = _dot_quote(f"{name}\n{_label(flt)}{_placed(topology, name)}")
            lines.append(f"{indent}{_dot_quote(name)} [label={text} shape={shape}];")
            if isinstance(flt, ControlStep):
                for arm in flt.arms():
                    cluster = _dot_quote(f"cluster_{name}_{arm}")
                    lines.append(f"{indent}subgraph {cluster} {{")
                    lines.append(f"{indent}    label={_dot_quote(f'{name}: {arm}')};")
                    emit_region(name, arm, indent + "    ")
                    lines.append(f"{indent}}}")

    emit_region(None, None, "    ")
    for src, dst in topology.edges:
        lines.append(f"    {_dot_quote(src)} -> {_dot_quote(dst)};")
    for name, arms in topology.arms.items():
        for arm, members in arms.items():
            for target in (m for m in members if not topology.preds[m]):
                lines.append(
                    f"    {_dot_quote(name)} -> {_dot_quote(target)} "
                    f"[label={_dot_quote(arm)} style=dashed];"
                )
    lines.append("}")
    return "\n".join(lines)


# -- summary -------------------------------------------------------------------------


def render_summary(graph: Graph) -> str:
    """One line, e.g. ``StandardScale >> PCA(n_components=16) >> LogReg(C=1.0)``."""
    topology = graph.topology
    if not topology.filters:
        return "(empty graph)"
    plan = graph.compile()

    def text(step: Step, nested: bool) -> str:
        if isinstance(step, Execute | Cached | Remote):
            return _label(topology.filters[step.node])
        if isinstance(step, Sequence):
            if not step.steps:
                return "(pass)"
            return " >> ".join(text(s, True) for s in step.steps)
        if isinstance(step, Parallel):
            return "(" + " | ".join(text(s, False) for s in step.branches) + ")"
        if isinstance(step, Branch):
            arms = ", ".join(f"{label}={text(arm, False)}" for label, arm in step.arms)
            return f"Branch({_describe(step.predicate)}, {arms})"
        if isinstance(step, Loop):
            return f"Loop({text(step.body, False)}, max_iterations={step.max_iterations})"
        return repr(step)  # pragma: no cover

    return text(plan.root, False)
