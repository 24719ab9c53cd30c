"""ModelParallel: stages of a chain graph on different worker processes, micro-batches
pipelined through them.

``partitions`` maps every node to a worker target (any name: ``"worker-0"``); consecutive
nodes with one target form a stage, and each distinct target is one worker process, which
keeps its stage (filters and fitted states) between calls. Fit runs the stages in order
(stage k fits on stage k-1's training output); forward splits ``x`` into micro-batches of
``communication.micro_batch`` rows and keeps every stage busy with a different batch
(at most one in flight per stage, the rest queued here), so stage 2 works on batch 1
while stage 1 works on batch 2. Outputs are joined in order: the same output as Local for
filters whose forward works row by row. ``graph.last_run.placement`` names the worker
(and its pid) that ran each node. The cache is not used under ModelParallel.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pydantic
from pydantic import Field

from soma.events import NodeReport, RunReport
from soma.training._options import Pipeline, named
from soma.training._shards import rows, take
from soma.training._strategy import FitCall, StrategyModel, TrainingError
from soma.training._workers import WorkerPool, get_pool, ship

if TYPE_CHECKING:
    from soma.execute import RunResult
    from soma.graph import Graph

__all__ = ["ModelParallel"]

_KEEP_STAGES = 8  # stages a worker keeps loaded (the graphs it served last)


class ModelParallel(StrategyModel):
    """Model-parallel training and inference of a chain graph (``a >> b >> c``)."""

    runs_graph: ClassVar[bool] = True

    kind: Literal["model_parallel"] = "model_parallel"
    partitions: dict[str, str] = Field(min_length=1)
    communication: Pipeline = Pipeline()

    _loaded: dict[int, tuple[str, Any]] = pydantic.PrivateAttr(default_factory=dict)

    @pydantic.field_validator("communication", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return named(value)

    def placement(self, nodes: Any) -> dict[str, str]:
        return {node: self.partitions[node] for node in nodes if node in self.partitions}

    def fit(self, call: FitCall) -> Any:
        raise TrainingError(
            f"ModelParallel runs whole graphs (Graph(strategy=ModelParallel(...))); it cannot "
            f"fit node {call.node!r} alone"
        )

    # -- the graph run -----------------------------------------------------------------------

    def _stages(self, graph: Graph) -> list[tuple[str, list[str]]]:
        topology = graph.topology
        if topology.arms:
            raise TrainingError("ModelParallel needs a chain graph without Branch/Loop steps")
        order = graph.compile().order
        for i, name in enumerate(order):
            preds = list(topology.preds[name])
            if preds != ([order[i - 1]] if i else []):
                raise TrainingError(
                    f"ModelParallel needs a chain graph (a >> b >> c); node {name!r} has inputs "
                    f"{preds or 'from the graph input'} instead of the node before it"
                )
        unknown = sorted(set(self.partitions) - set(order))
        if unknown:
            raise TrainingError(
                f"ModelParallel.partitions: unknown node(s) {', '.join(unknown)} "
                f"(nodes: {', '.join(order)})"
            )
        missing = [n for n in order if n not in self.partitions]
        if missing:
            raise TrainingError(
                f"ModelParallel.partitions: no worker for node(s) {', '.join(missing)}; "
                "place every node"
            )
        stages: list[tuple[str, list[str]]] = []
        for name in order:
            target = self.partitions[name]
            if stages and stages[-1][0] == target:
                stages[-1][1].append(name)
            else:
                stages.append((target, [name]))
        return stages

    def run_graph(
        self, graph: Graph, x: Any, y: Any, *, fitting: bool, want_output: bool
    ) -> RunResult:
        from soma.execute import RunResult

        stages = self._stages(graph)
        targets = list(dict.fromkeys(target for target, _ in stages))
        pool = get_pool(len(targets))
        worker = {target: i for i, target in enumerate(targets)}
        filters = graph.nodes
        for flt in filters.values():
            ship(flt)
        report = RunReport(run_id=f"{'fit' if fitting else 'forward'}-mp{secrets.token_hex(4)}",
                           phase="fit" if fitting else "forward")  # fmt: skip
        started = time.perf_counter()
        states: dict[tuple[str, tuple[int, ...]], Any] = {}
        output = None
        with pool.lock:
            if fitting:
                value = x
                for s, (target, names) in enumerate(stages):
                    last = s == len(stages) - 1
                    token = secrets.token_hex(8)
                    args = (
                        token,
                        names,
                        [filters[n] for n in names],
                        value,
                        y,
                        want_output or not last,
                    )
                    (outcome,) = pool.run(
                        [(worker[target], _on_stage_fit, args)], f"stage {s} ({target})"
                    )
                    value, stage_states, seconds = outcome.value
                    for name in names:
                        states[(name, ())] = stage_states[name]
                        report.nodes[name] = NodeReport("ok", False, seconds / len(names), None, 1)
                    self._loaded[worker[target]] = (token, states)
                output = value if want_output else None
            else:
                states = dict(graph._states)
                tokens = self._ensure_loaded(pool, stages, worker, filters, states)
                output = self._pipeline(pool, stages, worker, tokens, x, report)
        for target, names in stages:
            for name in names:
                report.placement[name] = f"{target} (pid {pool.pids[worker[target]]})"
        report.duration_s = time.perf_counter() - started
        return RunResult(output, states, {key: None for key in states}, report)

    def _ensure_loaded(
        self,
        pool: WorkerPool,
        stages: list[tuple[str, list[str]]],
        worker: dict[str, int],
        filters: dict[str, Any],
        states: dict,
    ) -> list[str]:
        """Each stage's token on its worker, loading filters and states where the worker
        does not hold this graph's fitted stage (another graph ran there, or a new pool)."""
        tokens = []
        for s, (target, names) in enumerate(stages):
            index = worker[target]
            loaded = self._loaded.get(index)
            have = {n: states[(n, ())] for n in names if (n, ()) in states}
            if loaded is not None and all(
                (n, ()) in loaded[1] and loaded[1][(n, ())] is have.get(n) for n in names
            ):
                tokens.append(loaded[0])
                continue
            missing = [n for n in names if n not in have and not filters[n].is_stateless()]
            if missing:
                raise TrainingError(
                    f"forward before fit: stage {s} node {missing[0]!r} has no state"
                )
            token = secrets.token_hex(8)
            args = (token, names, [filters[n] for n in names], have)
            pool.run([(index, _on_stage_load, args)], f"stage {s} ({target})")
            self._loaded[index] = (token, states)
            tokens.append(token)
        return tokens

    def _pipeline(
        self,
        pool: WorkerPool,
        stages: list[tuple[str, list[str]]],
        worker: dict[str, int],
        tokens: list[str],
        x: Any,
        report: RunReport,
    ) -> Any:
        n = rows(x, "x")
        size = self.communication.micro_batch or max(n, 1)
        batches = [take(x, slice(a, min(a + size, n))) for a in range(0, max(n, 1), size)]
        queues: list[collections.deque[tuple[int, Any]]] = [collections.deque() for _ in stages]
        queues[0].extend(enumerate(batches))
        busy: dict[int, int] = {}  # stage -> batch in flight
        done: dict[int, Any] = {}
        seconds = [0.0] * len(stages)
        while len(done) < len(batches):
            for s, queue in enumerate(queues):
                if s not in busy and queue:
                    batch, value = queue.popleft()
                    target = stages[s][0]
                    pool.submit(worker[target], _on_stage_forward, (tokens[s], value))
                    busy[s] = batch
            by_worker = {worker[stages[s][0]]: s for s in busy}
            for index in pool.ready(list(by_worker)):
                s = by_worker[index]
                batch = busy.pop(s)
                try:
                    out, spent = pool.receive(index, f"stage {s} ({stages[s][0]})")
                except TrainingError:
                    _drain(pool, busy, stages, worker)
                    raise
                seconds[s] += spent
                if s + 1 < len(stages):
                    queues[s + 1].append((batch, out))
                else:
                    done[batch] = out
        for s, (_, names) in enumerate(stages):
            for name in names:
                report.nodes[name] = NodeReport(
                    "ok", False, seconds[s] / len(names), None, len(batches)
                )
        return _join([done[i] for i in range(len(batches))])


def _drain(pool: WorkerPool, busy: dict[int, int], stages: list, worker: dict[str, int]) -> None:
    """Collect the replies still in flight, so the next call reads its own."""
    for s in list(busy):
        with contextlib.suppress(TrainingError):
            pool.receive(worker[stages[s][0]], f"stage {s}")
    busy.clear()


def _join(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, axis=0)
    if isinstance(first, list):
        return [item for part in parts for item in part]
    if type(first).__module__.startswith("torch"):
        import torch

        return torch.cat(parts, dim=0)
    raise TrainingError(
        f"ModelParallel cannot join micro-batch outputs of type {type(first).__name__}; "
        "return arrays or lists, or set communication=pipeline(micro_batch=None)"
    )


# -- inside the workers -------------------------------------------------------------------


def _stage_graph(names: list[str], filters: list[Any]) -> Any:
    from soma.graph import Graph

    graph = Graph(max_workers=1)
    previous = None
    for name, flt in zip(names, filters, strict=True):
        graph.node(flt, name)
        if previous is not None:
            graph.connect(previous, name)
        previous = name
    return graph


def _keep(slot: dict, token: str, graph: Any) -> None:
    stages = slot.setdefault("stages", collections.OrderedDict())
    stages[token] = graph
    while len(stages) > _KEEP_STAGES:
        stages.popitem(last=False)


def _on_stage_fit(
    slot: dict, token: str, names: list[str], filters: list[Any], x: Any, y: Any, want: bool
) -> tuple[Any, dict[str, Any], float]:
    started = time.perf_counter()
    graph = _stage_graph(names, filters)
    if want:
        out = graph.fit_forward(x, y)
    else:
        graph.fit(x, y)
        out = None
    _keep(slot, token, graph)
    return out, graph.states, time.perf_counter() - started


def _on_stage_load(
    slot: dict, token: str, names: list[str], filters: list[Any], states: dict[str, Any]
) -> int:
    graph = _stage_graph(names, filters)
    graph._states = {(name, ()): state for name, state in states.items()}
    graph._state_keys = {(name, ()): None for name in states}
    graph._fitted = True
    _keep(slot, token, graph)
    return os.getpid()


def _on_stage_forward(slot: dict, token: str, x: Any) -> Any:
    stages = slot.get("stages", {})
    if token not in stages:
        raise TrainingError("this worker no longer holds the stage (fit or run forward again)")
    return stages[token].forward(x)
