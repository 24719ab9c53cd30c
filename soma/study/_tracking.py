"""Per-trial bookkeeping: cache use from run reports or events, the best value so far,
readable error texts, progress callbacks that cannot break a study."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from soma.errors import ExecutionError
from soma.study._inputs import MetricFailed
from soma.study._intermediate import find_cause

if TYPE_CHECKING:
    import optuna

    from soma.study._result import StudyProgress

__all__ = ["BestTracker", "CacheUsage", "describe_error", "notify"]

_log = logging.getLogger("soma.study")


class CacheUsage:
    """Counts nodes served from the cache vs computed, and their keys, from run events
    (a cached node emits ``node_cache_hit`` then ``node_finished``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.finished = 0
        self.keys: dict[str, str] = {}

    def on_event(self, event: Any) -> None:
        if event.node is None or event.kind not in ("node_cache_hit", "node_finished"):
            return
        with self._lock:
            if event.kind == "node_cache_hit":
                self.hits += 1
                return
            self.finished += 1
            if event.cache_key:
                self.keys[f"{event.phase}/{event.node}"] = event.cache_key

    def add_report(self, report: Any) -> None:
        if report is None:
            return
        with self._lock:
            for node, entry in report.nodes.items():
                if entry.status not in ("ok", "cached"):
                    continue
                self.finished += 1
                self.hits += bool(entry.cache_hit)
                if entry.key:
                    self.keys[f"{report.phase}/{node}"] = entry.key

    def as_attrs(self) -> dict[str, Any]:
        with self._lock:
            return {
                "cache_hits": self.hits,
                "cache_misses": self.finished - self.hits,
                "cache_keys": dict(self.keys),
            }


class BestTracker:
    def __init__(self, study: optuna.Study, directions: tuple[str, ...]) -> None:
        self.single = len(directions) == 1
        self.sign = 1.0 if directions[0] == "maximize" else -1.0
        self.best: float | None = None
        if self.single:
            for frozen in study.get_trials(deepcopy=False):
                if frozen.state.name == "COMPLETE" and frozen.value is not None:
                    self._offer(frozen.value)

    def _offer(self, value: float) -> None:
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best = value

    def update(self, record: Any) -> None:
        if self.single and record.status == "ok" and record.value is not None:
            self._offer(record.value)


def describe_error(exc: BaseException) -> tuple[str, str | None]:
    execution = find_cause(exc, ExecutionError)
    if isinstance(execution, ExecutionError):
        return str(execution), execution.node
    if isinstance(exc, MetricFailed):
        return str(exc), None
    return f"{type(exc).__name__}: {exc}", None


def notify(progress: Callable[[StudyProgress], Any], event: StudyProgress) -> None:
    try:
        progress(event)
    except Exception:
        _log.exception("study progress callback %r raised; ignored", progress)
