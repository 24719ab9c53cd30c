"""Series-parallel decomposition of a region of the graph into plan steps.

A node that every other node of the region reaches or is reached from is a point of the
Sequence (found in linear time by two scans over the topological order); independent
components become Parallel branches. A segment that is not series-parallel falls back to
splitting off its sources (a barrier, but always correct).
"""

from __future__ import annotations

from soma.plan import Execute, Parallel, Sequence, Step

__all__ = ["decompose"]


def decompose(order: list[str], preds: dict, succs: dict) -> Step:
    if not order:
        return Sequence(())
    if len(order) == 1:
        return Execute(order[0])
    member = set(order)
    components = _components(order, member, preds, succs)
    if len(components) > 1:
        return Parallel(tuple(decompose(c, preds, succs) for c in components))
    pivots = _series_pivots(order, member, preds, succs)
    steps: list[Step] = []
    segment: list[str] = []
    for name in order:
        if name in pivots:
            if segment:
                steps.append(_decompose_segment(segment, preds, succs))
                segment = []
            steps.append(Execute(name))
        else:
            segment.append(name)
    if segment:
        steps.append(_decompose_segment(segment, preds, succs))
    return _sequence(steps)


def _decompose_segment(segment: list[str], preds: dict, succs: dict) -> Step:
    member = set(segment)
    if len(_components(segment, member, preds, succs)) > 1 or len(segment) == 1:
        return decompose(segment, preds, succs)
    if _series_pivots(segment, member, preds, succs):
        return decompose(segment, preds, succs)
    # Not series-parallel: split off the segment's sources (a barrier, but always correct).
    sources = [n for n in segment if not any(p in member for p in preds[n])]
    rest = [n for n in segment if n not in set(sources)]
    head = decompose(sources, preds, succs)
    return _sequence([head, decompose(rest, preds, succs)])


def _sequence(steps: list[Step]) -> Step:
    flat: list[Step] = []
    for step in steps:
        flat.extend(step.steps if isinstance(step, Sequence) else (step,))
    return flat[0] if len(flat) == 1 else Sequence(tuple(flat))


def _components(order: list[str], member: set[str], preds: dict, succs: dict) -> list[list[str]]:
    label: dict[str, int] = {}
    count = 0
    for start in order:
        if start in label:
            continue
        label[start] = count
        queue = [start]
        while queue:
            node = queue.pop()
            for other in (*preds[node], *succs[node]):
                if other in member and other not in label:
                    label[other] = count
                    queue.append(other)
        count += 1
    groups: list[list[str]] = [[] for _ in range(count)]
    for name in order:  # keep topological order inside each component
        groups[label[name]].append(name)
    return groups


def _series_pivots(order: list[str], member: set[str], preds: dict, succs: dict) -> set[str]:
    """Nodes that every other node of ``order`` reaches or is reached from (linear time)."""
    n = len(order)
    indeg = [sum(1 for p in preds[v] if p in member) for v in order]
    outdeg = [sum(1 for s in succs[v] if s in member) for v in order]
    # forward: v is the only sink of prefix + v, and every open edge enters v
    unique_sink = [False] * n
    sinks = 0
    open_edges = 0
    has_succ_seen: set[str] = set()
    for i, v in enumerate(order):
        crossing_ok = open_edges == indeg[i]
        for p in preds[v]:
            if p in member and p not in has_succ_seen:
                has_succ_seen.add(p)
                sinks -= 1
        sinks += 1
        open_edges += outdeg[i] - indeg[i]
        unique_sink[i] = crossing_ok and sinks == 1
    # backward: v is the only source of v + suffix
    pivots: set[str] = set()
    sources = 0
    has_pred_seen: set[str] = set()
    for i in range(n - 1, -1, -1):
        v = order[i]
        for s in succs[v]:
            if s in member and s not in has_pred_seen:
                has_pred_seen.add(s)
                sources -= 1
        sources += 1
        if sources == 1 and unique_sink[i]:
            pivots.add(v)
    return pivots
