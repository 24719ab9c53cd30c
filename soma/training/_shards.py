"""Sharding a node's rows, and the replica / client side of the training loops.

The ``_on_*`` functions run inside a worker process (``soma.training._workers``); their
``slot`` is that process's persistent dict, where each fit keeps its shard under a token.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soma.training._strategy import FitCall, TrainingError
from soma.training._workers import Outcome, WorkerPool, get_pool, ship

__all__ = ["FitReport", "Shard", "rows", "shard_bounds", "take", "workers_for"]


def rows(value: Any, what: str) -> int:
    """The number of rows (first axis) of ``value``."""
    try:
        return len(value)
    except TypeError:
        raise TrainingError(f"{what} has no rows to shard ({type(value).__name__})") from None


def take(value: Any, index: np.ndarray | slice) -> Any:
    """Rows ``index`` of an array, a list or a tuple (the same rows of x and of y)."""
    if hasattr(value, "iloc"):  # pandas
        return value.iloc[index]
    if isinstance(value, list | tuple):
        picked = np.arange(len(value))[index]
        return type(value)(value[int(i)] for i in picked)
    if hasattr(value, "shape") and hasattr(value, "__getitem__"):  # numpy, torch
        return value[index]
    raise TrainingError(f"cannot shard a {type(value).__name__}: pass a numpy array or a list")


def shard_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` row windows, sizes differing by at most one."""
    sizes = [n // parts + (1 if i < n % parts else 0) for i in range(parts)]
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return bounds


@dataclass(slots=True)
class Shard:
    rows: np.ndarray  # row indices into the node's input
    x: Any
    y: Any


@dataclass
class FitReport:
    """How one node was trained by a strategy (``strategy.reports[node]``)."""

    strategy: str
    workers: list[str]  # "pid 1234" per replica / client / stage
    shards: list[tuple[int, int]] = field(default_factory=list)  # (first row, rows) per worker
    rounds: int = 0
    seconds: float = 0.0
    setup_bytes: int = 0  # shards placed on the workers, once
    round_bytes: list[int] = field(default_factory=list)  # bytes moved per round, both ways
    round_seconds: list[float] = field(default_factory=list)
    compute_seconds: list[float] = field(default_factory=list)  # slowest worker per round
    losses: list[float] = field(default_factory=list)

    @property
    def bytes_per_round(self) -> float:
        return float(np.mean(self.round_bytes)) if self.round_bytes else 0.0

    @property
    def overhead_per_round_s(self) -> float:
        """Round wall time minus the slowest worker's compute: communication + merging."""
        pairs = zip(self.round_seconds, self.compute_seconds, strict=True)
        gaps = [wall - compute for wall, compute in pairs]
        return float(np.mean(gaps)) if gaps else 0.0


def single_input(call: FitCall, strategy: str) -> Any:
    if len(call.args) != 1:
        raise TrainingError(
            f"{strategy} trains nodes with one input; node {call.node!r} takes {len(call.args)}"
        )
    if call.y is None:
        raise TrainingError(f"{strategy}: node {call.node!r} was fitted without labels y")
    n_x, n_y = rows(call.args[0], "x"), rows(call.y, "y")
    if n_x != n_y:
        raise TrainingError(
            f"{strategy}: node {call.node!r} has {n_x} input rows but {n_y} labels; x and y "
            "are sharded together, row by row"
        )
    return call.args[0]


@contextmanager
def workers_for(
    parts: Sequence[Shard], flt: Any, role: str, report: FitReport, workers: int | None = None
) -> Iterator[tuple[WorkerPool, str, list[int]]]:
    """A pool of ``workers`` processes (default: one per shard) holding the shards (shard
    ``i`` on worker ``i % workers``) and the filter under a fresh token for the block;
    yields the pool, the token and each shard's worker."""
    ship(flt)
    size = workers or len(parts)
    pool = get_pool(size)
    token = secrets.token_hex(8)
    where = [i % size for i in range(len(parts))]
    with pool.lock:
        loads: dict[int, list[tuple[int, Any, Any]]] = {}
        for i, part in enumerate(parts):
            loads.setdefault(where[i], []).append((i, part.x, part.y))
        tasks = [(w, _on_load, (token, flt, items)) for w, items in loads.items()]
        outcomes = pool.run(tasks, "worker")
        report.setup_bytes = sum(o.sent for o in outcomes)
        report.workers = [f"pid {pool.pids[w]}" for w in where]
        try:
            yield pool, token, where
        finally:
            if pool.broken is None:
                pool.run([(w, _on_drop, (token,)) for w in loads], "worker")


def note_round(report: FitReport, outcomes: Sequence[Outcome], wall: float) -> None:
    report.rounds += 1
    report.round_bytes.append(sum(o.sent + o.received for o in outcomes))
    report.round_seconds.append(wall)
    report.compute_seconds.append(max(o.seconds for o in outcomes))


# -- inside the workers ---------------------------------------------------------------------


def _on_load(slot: dict, token: str, flt: Any, items: list[tuple[int, Any, Any]]) -> None:
    slot[token] = {"filter": flt, "shards": {i: (x, y) for i, x, y in items}, "state": None}


def _on_drop(slot: dict, token: str) -> None:
    slot.pop(token, None)


def on_partial_fit(slot: dict, token: str, shard: int, state: Any, steps: int) -> Any:
    entry = slot[token]
    x, y = entry["shards"][shard]
    new = entry["filter"].partial_fit(x, y, state, steps)
    if new is None:
        raise TypeError(f"{type(entry['filter']).__name__}.partial_fit returned None")
    return new


def on_clients(
    slot: dict, token: str, clients: list[int], state: Any, steps: int, mu: float | None
) -> list[tuple[int, Any]]:
    """One federated round for this worker's selected clients, each from the global state.

    A client that raises is reported by its index (the worker's other clients do not hide
    it)."""
    entry = slot[token]
    flt = entry["filter"]
    out = []
    for client in clients:
        x, y = entry["shards"][client]
        try:
            if mu is None:
                new = flt.partial_fit(x, y, state, steps)
            else:
                new = flt.partial_fit_prox(x, y, state, steps, state, mu)
        except Exception as exc:
            raise TrainingError(f"client {client}: {type(exc).__name__}: {exc}") from exc
        if new is None:
            raise TrainingError(f"client {client}: {type(flt).__name__}.partial_fit returned None")
        out.append((client, new))
    return out


def on_allreduce_step(
    slot: dict, token: str, shard: int, state: Any, reduced: Any, last: bool
) -> Any:
    """Apply the reduced gradient of the previous round to this replica's own copy of the
    state (``state`` arrives only in round 0), then return the gradient on this shard."""
    entry = slot[token]
    flt = entry["filter"]
    if state is not None:
        entry["state"] = state
    if reduced is not None:
        entry["state"] = flt.apply_gradient(entry["state"], reduced)
    if last:
        return entry["state"]
    x, y = entry["shards"][shard]
    return flt.gradient(x, y, entry["state"])
