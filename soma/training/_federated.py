"""Federated: clients fit on their own shards; only states travel, never data.

The node's rows are split into ``num_clients`` shards once (``partition``: contiguous
windows, which keep whatever order the data has — sorted data gives non-IID clients — or
``interleaved`` rows, near IID) and placed on worker processes, several clients per
process when there are more clients than ``workers``. Each round the selected clients start
from the global state, run ``local_steps`` of ``partial_fit`` (FedProx: of
``partial_fit_prox`` pulled towards the global state with strength ``mu``) and send their
states back; the new global state is ``merge(states, weights=client rows / selected
rows)``. After the setup, only states cross between processes (``reports[node]`` counts
the bytes per round).
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import Field

from soma.training._options import (
    Aggregation,
    AllClients,
    FedAvg,
    FedProx,
    RandomClients,
    Selection,
    TaggedClients,
    named,
)
from soma.training._protocol import require
from soma.training._shards import (
    FitReport,
    Shard,
    note_round,
    on_clients,
    rows,
    shard_bounds,
    single_input,
    take,
    workers_for,
)
from soma.training._strategy import FitCall, NodeStrategy, TrainingError

__all__ = ["Federated"]


class Federated(NodeStrategy):
    """Federated training: ``rounds`` (>= 1) of local training on ``num_clients`` (>= 1)
    clients and aggregation (``"fedavg"`` or ``fedprox(mu)``); ``client_selection``:
    ``"all"``, ``random(fraction)`` (0 < fraction <= 1) or ``by_tags(...)`` over
    ``client_tags`` (one tuple of tags per client)."""

    kind: Literal["federated"] = "federated"
    num_clients: int = Field(ge=1)
    rounds: int = Field(ge=1)
    local_steps: int = Field(default=1, ge=1)
    aggregation: Aggregation = FedAvg()
    client_selection: Selection = AllClients()
    client_tags: tuple[tuple[str, ...], ...] | None = None
    partition: Literal["contiguous", "interleaved"] = "contiguous"
    workers: int | None = Field(default=None, ge=1)

    _reports: dict[str, FitReport] = pydantic.PrivateAttr(default_factory=dict)

    track_loss: bool = False  # record loss_value(x, y, state) on all rows after each round

    @pydantic.field_validator("aggregation", "client_selection", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return named(value)

    @pydantic.model_validator(mode="after")
    def _tags_per_client(self) -> Federated:
        tags = self.client_tags
        if tags is not None and len(tags) != self.num_clients:
            raise ValueError(
                f"client_tags: expected one tuple of tags per client ({self.num_clients}), "
                f"got {len(tags)}"
            )
        if isinstance(self.client_selection, TaggedClients):
            if tags is None:
                raise ValueError("client_selection by_tags needs client_tags")
            if not self._tagged():
                raise ValueError(
                    f"client_selection by_tags{self.client_selection.tags}: no client has "
                    "any of these tags"
                )
        return self

    @property
    def reports(self) -> dict[str, FitReport]:
        return self._reports

    def where(self) -> str:
        return f"{self.num_clients} clients, {self.rounds} rounds, {self.aggregation!r}"

    def _tagged(self) -> list[int]:
        wanted = set(self.client_selection.tags)  # type: ignore[union-attr]
        return [i for i, tags in enumerate(self.client_tags or ()) if wanted & set(tags)]

    def _select(self, rng: np.random.Generator) -> list[int]:
        selection = self.client_selection
        if isinstance(selection, RandomClients):
            count = max(1, round(selection.fraction * self.num_clients))
            return sorted(int(i) for i in rng.choice(self.num_clients, count, replace=False))
        if isinstance(selection, TaggedClients):
            return self._tagged()
        return list(range(self.num_clients))

    def fit(self, call: FitCall) -> Any:
        if not self.trains(call.node):
            return call.run()  # not one of ``nodes``: Local, as the plan views show
        label = f"Federated({self.aggregation!r})"
        prox = isinstance(self.aggregation, FedProx)
        flt = call.filter
        require(
            flt,
            call.node,
            label,
            ("init_state", "partial_fit_prox" if prox else "partial_fit", "merge"),
        )
        x = single_input(call, label)
        n = rows(x, "x")
        k = self.num_clients
        if n < k:
            raise TrainingError(
                f"Federated(num_clients={k}): node {call.node!r} has {n} rows, so client {n} "
                "would hold no data"
            )
        if self.partition == "contiguous":
            index = [np.arange(a, b) for a, b in shard_bounds(n, k)]
        else:
            index = [np.arange(i, n, k) for i in range(k)]
        parts = [Shard(ix, take(x, ix), take(call.y, ix)) for ix in index]
        sizes = np.array([len(ix) for ix in index], dtype=np.float64)
        report = FitReport(repr(self), [], [(int(ix[0]), len(ix)) for ix in index])
        workers = self.workers or min(k, _cpus())
        mu = self.aggregation.mu if isinstance(self.aggregation, FedProx) else None
        rng = np.random.default_rng(getattr(self.client_selection, "seed", 0))
        started = time.perf_counter()
        state = flt.init_state(x, call.y)
        with workers_for(parts, flt, "client", report, workers) as (pool, token, where):
            for _ in range(self.rounds):
                t0 = time.perf_counter()
                selected = self._select(rng)
                by_worker: dict[int, list[int]] = {}
                for client in selected:
                    by_worker.setdefault(where[client], []).append(client)
                tasks = [
                    (w, on_clients, (token, clients, state, self.local_steps, mu))
                    for w, clients in by_worker.items()
                ]
                outcomes = pool.run(tasks, "client worker")
                states = dict(pair for o in outcomes for pair in o.value)
                chosen = sorted(states)
                weights = sizes[chosen] / sizes[chosen].sum()
                state = flt.merge([states[c] for c in chosen], [float(w) for w in weights])
                note_round(report, outcomes, time.perf_counter() - t0)
                loss = getattr(flt, "loss_value", None)
                if self.track_loss and callable(loss):
                    report.losses.append(float(loss(x, call.y, state)))
        report.seconds = time.perf_counter() - started
        self._reports[call.node] = report
        return state


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
