"""What a study produced: one TrialRecord per trial and the StudyResult around them.

Everything Soma adds to an Optuna trial (its Soma-level parameters, error, failing node,
cache use, metric values) is kept in the trial's attributes (``soma.study._tracking``), so a
result can be rebuilt from the storage alone (``load_result``), also for studies continued
later.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from soma.errors import StudyError
from soma.vocabulary import Direction

if TYPE_CHECKING:
    import optuna

__all__ = ["StudyProgress", "StudyResult", "TrialRecord", "list_studies", "load_result"]

SOMA_ATTR = "soma"
_STATUS = {"COMPLETE": "ok", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


@dataclass(frozen=True)
class TrialRecord:
    """One trial. ``status`` uses the knowledge base's words: ok / pruned / failed / running."""

    number: int
    status: str
    params: dict[str, Any]
    values: tuple[float, ...] | None
    metrics: dict[str, float]
    error: str | None = None
    node: str | None = None  # the node that raised, for failed trials
    pruned_step: int | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    duration_s: float | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    cache_keys: dict[str, str] = field(default_factory=dict)
    started: datetime | None = None
    finished: datetime | None = None
    experiment_id: str | None = None

    @property
    def value(self) -> float | None:
        """The first objective value (None unless the trial completed)."""
        return self.values[0] if self.values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": self.status,
            "params": jsonable(self.params),
            "values": list(self.values) if self.values else None,
            "metrics": self.metrics,
            "error": self.error,
            "node": self.node,
            "pruned_step": self.pruned_step,
            "duration_s": self.duration_s,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "experiment_id": self.experiment_id,
        }


@dataclass(frozen=True)
class StudyProgress:
    """Sent to ``Study.run(progress=...)`` after every finished trial."""

    done: int  # trials finished in this run
    total: int | None  # trials this run will make (None: until the timeout)
    best_value: float | None
    trial: TrialRecord


@dataclass(frozen=True)
class StudyResult:
    """The outcome of a study (all its trials, also those of earlier runs of the same name).

    ``best_*`` are for single-objective studies (None for multi-objective ones, which have
    ``pareto_front``). Cache figures cover the trials run by this call (``new_trials``).
    """

    name: str
    directions: tuple[str, ...]
    metric_names: tuple[str, ...]
    storage: str | None
    trials: tuple[TrialRecord, ...]
    new_trials: tuple[int, ...] = ()
    pareto_front: tuple[TrialRecord, ...] = ()
    duration_s: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def multi_objective(self) -> bool:
        return len(self.directions) > 1

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(t.status for t in self.trials)
        return {s: counts.get(s, 0) for s in ("ok", "pruned", "failed", "running")}

    @property
    def best_trial(self) -> TrialRecord | None:
        if self.multi_objective:
            return None
        done = [t for t in self.trials if t.status == "ok" and t.values]
        if not done:
            return None
        sign = Direction(self.directions[0]).sign
        return max(done, key=lambda t: (sign * t.values[0], -t.number))  # type: ignore[index]

    @property
    def best_value(self) -> float | None:
        best = self.best_trial
        return best.value if best else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        best = self.best_trial
        return dict(best.params) if best else None

    @property
    def cache_hit_rate(self) -> float | None:
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else None

    @property
    def errors(self) -> list[str]:
        return [f"trial {t.number}: {t.error}" for t in self.trials if t.error]

    @property
    def mean_trial_s(self) -> float | None:
        spans = [t.duration_s for t in self.trials if t.duration_s is not None]
        return sum(spans) / len(spans) if spans else None

    def trial(self, number: int) -> TrialRecord:
        for t in self.trials:
            if t.number == number:
                return t
        raise KeyError(f"study {self.name!r} has no trial {number}")

    def summary(self) -> str:
        c = self.counts
        parts = [
            f"study {self.name!r}: {len(self.trials)} trials "
            f"({c['ok']} ok, {c['pruned']} pruned, {c['failed']} failed)"
        ]
        if self.multi_objective:
            parts.append(f"Pareto front of {len(self.pareto_front)}")
        elif self.best_trial is not None:
            parts.append(
                f"best {self.metric_names[0]}={self.best_value:.6g} (trial "
                f"{self.best_trial.number}, {params_text(self.best_trial.params)})"
            )
        if self.cache_hit_rate is not None:
            parts.append(f"cache hit rate {self.cache_hit_rate:.0%}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        best = self.best_trial
        return {
            "name": self.name,
            "directions": list(self.directions),
            "metrics": list(self.metric_names),
            "storage": self.storage,
            "counts": self.counts,
            "best_trial": best.number if best else None,
            "best_value": self.best_value,
            "best_params": jsonable(self.best_params),
            "pareto_front": [t.number for t in self.pareto_front],
            "new_trials": list(self.new_trials),
            "duration_s": self.duration_s,
            "mean_trial_s": self.mean_trial_s,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_rate": self.cache_hit_rate,
            "errors": self.errors,
            "trials": [t.to_dict() for t in self.trials],
        }

    def __str__(self) -> str:
        return self.summary()


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in params.items()
    )


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (reprs for anything else), for storage attributes."""
    return json.loads(json.dumps(value, default=repr, allow_nan=True))


def make_record(
    number: int,
    state: str,
    attrs: dict[str, Any],
    values: Sequence[float] | None,
    *,
    intermediate: dict[int, float] | None = None,
    started: datetime | None = None,
    finished: datetime | None = None,
    fallback_params: dict[str, Any] | None = None,
) -> TrialRecord:
    """A TrialRecord from an Optuna state name and the trial's ``soma`` attributes."""
    status = _STATUS.get(state, state.lower())
    merged = dict(intermediate or {})
    merged.update({int(k): float(v) for k, v in attrs.get("intermediate", {}).items()})
    return TrialRecord(
        number=number,
        status=status,
        params=attrs.get("params", fallback_params or {}),
        values=tuple(values) if values is not None and status == "ok" else None,
        metrics={k: float(v) for k, v in attrs.get("metrics", {}).items()},
        error=attrs.get("error"),
        node=attrs.get("node"),
        pruned_step=attrs.get("pruned_step"),
        intermediate=merged,
        duration_s=attrs.get("duration_s"),
        cache_hits=int(attrs.get("cache_hits", 0)),
        cache_misses=int(attrs.get("cache_misses", 0)),
        cache_keys=dict(attrs.get("cache_keys", {})),
        started=started,
        finished=finished,
        experiment_id=attrs.get("experiment_id"),
    )


def record_from_frozen(frozen: optuna.trial.FrozenTrial) -> TrialRecord:
    from soma.study._tracking import read_trial_attrs

    attrs = read_trial_attrs(frozen)
    if "error" not in attrs and frozen.system_attrs.get("fail_reason"):
        attrs["error"] = frozen.system_attrs["fail_reason"]
    if attrs.get("duration_s") is None and frozen.duration is not None:
        attrs["duration_s"] = frozen.duration.total_seconds()
    return make_record(
        frozen.number,
        frozen.state.name,
        attrs,
        frozen.values,
        intermediate={int(k): float(v) for k, v in frozen.intermediate_values.items()},
        started=frozen.datetime_start,
        finished=frozen.datetime_complete,
        fallback_params=dict(frozen.params),
    )


def build_result(
    study: optuna.Study,
    metric_names: tuple[str, ...],
    storage: str | None,
    *,
    new_trials: tuple[int, ...] = (),
    duration_s: float = 0.0,
) -> StudyResult:
    from optuna.trial import TrialState

    records = []
    for frozen in study.get_trials(deepcopy=False):
        if frozen.state == TrialState.WAITING:
            continue
        records.append(record_from_frozen(frozen))
    directions = tuple(d.name.lower() for d in study.directions)
    by_number = {r.number: r for r in records}
    front: tuple[TrialRecord, ...] = ()
    if len(directions) > 1:
        front = tuple(by_number[t.number] for t in study.best_trials if t.number in by_number)
    counted = [r for r in records if r.number in set(new_trials)] if new_trials else records
    return StudyResult(
        name=study.study_name,
        directions=directions,
        metric_names=metric_names,
        storage=storage,
        trials=tuple(records),
        new_trials=new_trials,
        pareto_front=front,
        duration_s=duration_s,
        cache_hits=sum(r.cache_hits for r in counted),
        cache_misses=sum(r.cache_misses for r in counted),
    )


def metric_names_of(study: optuna.Study) -> tuple[str, ...]:
    names = study.user_attrs.get("soma_metrics")
    if isinstance(names, list) and len(names) == len(study.directions):
        return tuple(str(n) for n in names)
    if study.metric_names:
        return tuple(study.metric_names)
    return tuple("objective" if i == 0 else f"objective_{i}" for i in range(len(study.directions)))


def load_result(name: str, *, storage: Any = None, project: Any = None) -> StudyResult:
    """The result of a stored study (for ``soma study show``); StudyError if it is unknown."""

    from soma.study._inputs import resolve_project, resolve_storage, storage_label

    url = resolve_storage(storage, resolve_project(project))
    if url is None:
        raise StudyError(
            "load_result needs a storage or a project (in-memory studies end with their process)"
        )
    study = load_stored(name, url)
    return build_result(study, metric_names_of(study), storage_label(url))


def load_stored(name: str, url: Any) -> optuna.Study:
    """The study ``name`` in the storage ``url``; StudyError naming the known ones if absent."""
    import optuna

    from soma.study._inputs import storage_label

    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        known = ", ".join(optuna.get_all_study_names(url)) or "none"
        raise StudyError(
            f"no study named {name!r} in {storage_label(url)} (known: {known})"
        ) from None


def list_studies(*, storage: Any = None, project: Any = None) -> list[dict[str, Any]]:
    """Name, directions, trial count and best value of every stored study."""
    import optuna

    from soma.study._inputs import resolve_project, resolve_storage

    url = resolve_storage(storage, resolve_project(project))
    if url is None:
        raise StudyError("list_studies needs a storage or a project")
    out = []
    for summary in optuna.get_all_study_summaries(url, include_best_trial=True):
        best = summary.best_trial
        out.append(
            {
                "name": summary.study_name,
                "directions": [d.name.lower() for d in summary.directions],
                "n_trials": summary.n_trials,
                "best_value": best.value
                if best is not None and len(summary.directions) == 1
                else None,
                "started": summary.datetime_start,
            }
        )
    return out


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
