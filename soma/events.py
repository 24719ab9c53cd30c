"""Run events and run reports.

``g.on_event(callback)`` registers a callback that receives an :class:`Event` for every
step of every run: ``run_started``, ``run_finished``, ``run_failed``, ``node_started``,
``node_finished``, ``node_failed`` and ``node_cache_hit``. Callbacks are called
synchronously, in the thread that ran the node (parallel branches run in worker threads),
so keep them short. A callback that raises is logged and ignored: it never breaks a run.

After each run ``g.last_run`` holds a :class:`RunReport`: per node, whether it ran, came
from the cache or failed, how long it took and its cache key.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "EVENT_KINDS",
    "Event",
    "EventCallback",
    "NodeReport",
    "RunReport",
]

_log = logging.getLogger("soma.events")

EventKind = Literal[
    "run_started",
    "run_finished",
    "run_failed",
    "node_started",
    "node_finished",
    "node_failed",
    "node_cache_hit",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened during a run.

    ``node`` is None for run events. ``duration_s`` is set on ``*_finished``, ``*_failed``
    and ``node_cache_hit`` (the time to load the entry). ``total_nodes`` is set on
    ``run_started``; ``iteration`` on nodes inside a Loop body; ``worker`` on
    ``node_finished`` of a node that ran on a cluster worker (a Remote step).
    """

    kind: EventKind
    run_id: str
    phase: str
    node: str | None = None
    time: float = field(default_factory=time.time)
    duration_s: float | None = None
    error: str | None = None
    cache_key: str | None = None
    tier: str | None = None
    total_nodes: int | None = None
    iteration: int | None = None
    worker: str | None = None


EventCallback = Callable[[Event], Any]


# Callbacks whose failure was already logged in full. Weak references, not ids: an id is
# reused once its callback is gone, and a new callback then had its first error hidden at
# debug level.
_reported: weakref.WeakSet[Any] = weakref.WeakSet()
_reported_strong: list[Any] = []  # callables that cannot be weakly referenced
_reported_lock = threading.Lock()


def _first_failure(callback: EventCallback) -> bool:
    with _reported_lock:
        try:
            if callback in _reported:
                return False
            _reported.add(callback)
        except TypeError:
            if any(c is callback for c in _reported_strong):
                return False
            _reported_strong.append(callback)
        return True


def dispatch(callbacks: tuple[EventCallback, ...], event: Event) -> None:
    """Call every callback; a raising one is logged (with its traceback the first time)
    and skipped."""
    for callback in callbacks:
        try:
            callback(event)
        except Exception:
            if not _first_failure(callback):
                _log.debug("soma event callback %r raised again on %s", callback, event.kind)
            else:
                _log.exception(
                    "soma event callback %r raised on %s; ignored (further errors from it "
                    "are logged at debug level)",
                    callback,
                    event.kind,
                )


NodeStatus = Literal["ok", "cached", "failed", "skipped", "not_run"]


@dataclass(slots=True)
class NodeReport:
    """What happened to one node in a run.

    ``status``: ``"ok"`` (computed), ``"cached"`` (every result it needed came from the
    cache), ``"failed"``, ``"skipped"`` (in a Branch arm that was not taken) or
    ``"not_run"`` (the run stopped before it). ``runs`` counts executions (Loop bodies run
    several times; ``duration_s`` is their total).
    """

    status: NodeStatus
    cache_hit: bool = False
    duration_s: float = 0.0
    key: str | None = None
    runs: int = 0


@dataclass(slots=True)
class RunReport:
    """The outcome of one fit, forward or fit_forward run."""

    run_id: str
    phase: str
    duration_s: float = 0.0
    nodes: dict[str, NodeReport] = field(default_factory=dict)
    ok: bool = True
    error: str | None = None
    #: node -> the worker that ran it, when a training strategy placed it (ModelParallel)
    placement: dict[str, str] = field(default_factory=dict)

    @property
    def cache_hits(self) -> int:
        return sum(1 for r in self.nodes.values() if r.cache_hit)

    @property
    def cache_misses(self) -> int:
        return sum(1 for r in self.nodes.values() if r.status == "ok" and not r.cache_hit)

    @property
    def cache_keys(self) -> dict[str, str]:
        return {name: r.key for name, r in self.nodes.items() if r.key is not None}

    def __str__(self) -> str:
        state = "ok" if self.ok else f"failed ({self.error})"
        return (
            f"{self.phase} run {self.run_id}: {state} in {self.duration_s:.3f}s, "
            f"{len(self.nodes)} nodes, {self.cache_hits} cache hits, "
            f"{self.cache_misses} computed"
        )
