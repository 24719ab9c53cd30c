"""DataParallel: each replica updates on its shard of the rows, updates combined by shard size.

``parameter_server``: this process holds the state; each round it sends the state to every
replica, each runs ``partial_fit(shard, state, steps=1)``, and the states come back and are
merged with the filter's ``merge(states, weights=shard_size / rows)``.

``allreduce``: every replica holds its own copy of the state; each round it sends the
gradient of the mean loss on its shard, the gradients are averaged by shard size and the
mean sent back, and every replica applies it to its copy (so the copies stay identical
and only gradients travel). The reduce runs here, in one hop: the state itself never
crosses after round 0.

For a filter trained by full-batch gradient steps (``soma.training.LinearModel``,
``TorchModule``) both equal Local up to float rounding: the mean-loss gradient over all
rows is the shard-size-weighted mean of the shard gradients.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import Field

from soma.training._protocol import require, weighted_average
from soma.training._shards import (
    FitReport,
    Shard,
    note_round,
    on_allreduce_step,
    on_partial_fit,
    rows,
    shard_bounds,
    single_input,
    take,
    workers_for,
)
from soma.training._strategy import FitCall, NodeStrategy, TrainingError

__all__ = ["DataParallel"]


class DataParallel(NodeStrategy):
    """Data-parallel training over ``num_replicas`` worker processes (>= 1).

    Needs the distributed-fitting protocol (``soma.training.DistributedFilter``):
    ``init_state`` plus ``partial_fit`` and ``merge`` (parameter_server) or ``gradient``
    and ``apply_gradient`` (allreduce). The rounds are the filter's ``epochs``.
    ``nodes``: the nodes it trains (None: every node that learns; the others fit Local).
    After a fit, ``reports[node]`` says which process held which rows, the bytes moved
    and the time per round.
    """

    kind: Literal["data_parallel"] = "data_parallel"
    num_replicas: int = Field(ge=1)
    aggregation: Literal["allreduce", "parameter_server"] = "allreduce"

    _reports: dict[str, FitReport] = pydantic.PrivateAttr(default_factory=dict)

    @property
    def reports(self) -> dict[str, FitReport]:
        return self._reports

    def where(self) -> str:
        return f"{self.num_replicas} replicas, 1/{self.num_replicas} of the rows each"

    def fit(self, call: FitCall) -> Any:
        if not self.trains(call.node):
            return call.run()  # not one of ``nodes``: Local, as the plan views show
        label = f"DataParallel(aggregation={self.aggregation!r})"
        if self.aggregation == "allreduce":
            needed = ("init_state", "gradient", "apply_gradient")
        else:
            needed = ("init_state", "partial_fit", "merge")
        flt = call.filter
        require(flt, call.node, label, needed)
        x = single_input(call, label)
        n = rows(x, "x")
        k = self.num_replicas
        if n < k:
            raise TrainingError(
                f"DataParallel(num_replicas={k}): node {call.node!r} has {n} rows, so replica "
                f"{n} would get an empty shard; use at most {n} replicas"
            )
        epochs = getattr(flt, "epochs", 1)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise TrainingError(
                f"{type(flt).__name__}.epochs: expected an int >= 1, got {epochs!r}"
            )
        bounds = shard_bounds(n, k)
        parts = [
            Shard(np.arange(a, b), take(x, slice(a, b)), take(call.y, slice(a, b)))
            for a, b in bounds
        ]
        weights = [(b - a) / n for a, b in bounds]
        report = FitReport(repr(self), [], [(a, b - a) for a, b in bounds])
        started = time.perf_counter()
        state = flt.init_state(x, call.y)  # here, on all rows: the same start as Local
        with workers_for(parts, flt, "replica", report) as (pool, token, _):
            if self.aggregation == "parameter_server":
                for _ in range(epochs):
                    t0 = time.perf_counter()
                    tasks = [(i, on_partial_fit, (token, i, state, 1)) for i in range(k)]
                    outcomes = pool.run(tasks, "replica")
                    state = flt.merge([o.value for o in outcomes], weights)
                    note_round(report, outcomes, time.perf_counter() - t0)
            else:
                reduced = None
                for epoch in range(epochs + 1):
                    t0 = time.perf_counter()
                    first, last = epoch == 0, epoch == epochs
                    tasks = [
                        (i, on_allreduce_step, (token, i, state if first else None, reduced, last))
                        for i in range(k if not last else 1)  # one copy is enough at the end
                    ]
                    outcomes = pool.run(tasks, "replica")
                    if last:
                        state = outcomes[0].value
                    else:
                        reduced = weighted_average([o.value for o in outcomes], weights)
                        note_round(report, outcomes, time.perf_counter() - t0)
        report.seconds = time.perf_counter() - started
        self._reports[call.node] = report
        return state
