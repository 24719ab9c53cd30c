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
from soma.vocabulary import Direction

if TYPE_CHECKING:
    import optuna

    from soma.study._result import StudyProgress

__all__ = [
    "INTERNAL_ATTR",
    "BestTracker",
    "CacheUsage",
    "describe_error",
    "notify",
    "read_trial_attrs",
    "user_attrs_of",
    "write_trial_attrs",
]

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
        self.sign = Direction(directions[0]).sign
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


# -- what a trial stores in Optuna -------------------------------------------------------------
# optuna-dashboard shows (and sorts by) a trial's user attributes one value per column, so
# they are flat scalars a researcher reads: the experiment id, every metric by name, cache use,
# the error. What only Soma reads back (its parameter names, cache keys, intermediate values
# of multi-objective trials, the owning process) is a system attribute, out of the user's view.

INTERNAL_ATTR = "soma"
_FLAT = (
    "experiment_id",
    "error",
    "node",
    "pruned_step",
    "duration_s",
    "cache_hits",
    "cache_misses",
)


def user_attrs_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """The flat user attributes of a trial's bookkeeping ``attrs`` (scalars only).

    >>> user_attrs_of({"metrics": {"accuracy": 0.9}, "cache_hits": 2, "params": {"a": 1}})
    {'cache_hits': 2, 'accuracy': 0.9}
    """
    flat = {k: attrs[k] for k in _FLAT if attrs.get(k) is not None}
    for name, value in (attrs.get("metrics") or {}).items():
        # A metric named like one of the fixed columns keeps a prefix instead of hiding it.
        flat[f"metric:{name}" if name in _FLAT else name] = value
    return flat


def internal_attrs_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """What Soma keeps for itself: everything but the flat columns (params, keys, ...), and
    which user attributes are its metrics."""
    internal = {k: v for k, v in attrs.items() if k not in _FLAT and k != "metrics"}
    if attrs.get("metrics"):
        internal["metric_names"] = list(attrs["metrics"])
    return internal


def write_trial_attrs(study: optuna.Study, trial_id: int, attrs: dict[str, Any]) -> None:
    """Store ``attrs`` on a running trial: flat user attributes plus one system attribute."""
    from soma.study._result import jsonable

    storage = study._storage  # Optuna's storage API is public; a Trial has no system setter
    user = jsonable(user_attrs_of(attrs))
    system = {INTERNAL_ATTR: jsonable(internal_attrs_of(attrs))}
    if _set_attrs_at_once(storage, trial_id, user, system):
        return
    for key, value in user.items():
        storage.set_trial_user_attr(trial_id, key, value)
    for key, value in system.items():
        storage.set_trial_system_attr(trial_id, key, value)


def _set_attrs_at_once(
    storage: Any, trial_id: int, user: dict[str, Any], system: dict[str, Any]
) -> bool:
    """All attributes in one transaction of an RDB storage; False where that is not possible.

    One commit per attribute costs ~15 ms each on SQLite: ten columns would double a short
    trial's bookkeeping. Optuna has no public batch call, so this uses the RDB storage's own
    per-attribute step inside one session, and falls back when Optuna's internals differ.
    """
    try:
        from optuna.storages import RDBStorage
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:
        return False
    backend = getattr(storage, "_backend", storage)
    step = getattr(backend, "_set_trial_attr_without_commit", None)
    if not isinstance(backend, RDBStorage) or step is None:
        return False
    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in user.items():
            step(session, models.TrialUserAttributeModel, trial_id, key, value)
        for key, value in system.items():
            step(session, models.TrialSystemAttributeModel, trial_id, key, value)
    return True


def read_trial_attrs(frozen: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A stored trial's bookkeeping as one dict, from the flat layout or the older one (a
    single ``soma`` user attribute holding everything)."""
    legacy = frozen.user_attrs.get(INTERNAL_ATTR)
    if isinstance(legacy, dict) and INTERNAL_ATTR not in frozen.system_attrs:
        return dict(legacy)
    attrs = dict(frozen.system_attrs.get(INTERNAL_ATTR) or {})
    user = frozen.user_attrs
    attrs.update({k: user[k] for k in _FLAT if k in user})
    names = attrs.pop("metric_names", [])
    metrics = {}
    for name in names:
        value = user.get(f"metric:{name}" if name in _FLAT else name)
        if isinstance(value, int | float):
            metrics[name] = float(value)
    if metrics:
        attrs["metrics"] = metrics
    return attrs
