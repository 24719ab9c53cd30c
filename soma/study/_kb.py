"""Recording study trials (and PBT members) as experiments in the knowledge base."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.errors import KnowledgeBaseError, ValidationError
from soma.execution._faults import crash_point

if TYPE_CHECKING:
    from soma.knowledge import KnowledgeBase
    from soma.study._inputs import MetricDef, ProjectPaths, Splits
    from soma.study._result import TrialRecord

__all__ = ["StudyRecorder", "open_kb"]

_log = logging.getLogger("soma.study")


def open_kb(kb: Any) -> KnowledgeBase | None:
    """None, a KnowledgeBase, or a path to one (``True``: not accepted, be explicit)."""
    if kb is None:
        return None
    if isinstance(kb, str | Path):
        from soma.knowledge import KnowledgeBase

        return KnowledgeBase(Path(kb))
    if all(hasattr(kb, a) for a in ("record", "get_line", "create_line")):
        return kb
    raise ValidationError("kb", f"expected a KnowledgeBase or a path to one, got {kb!r}")


class StudyRecorder:
    """Writes one experiment per trial into the study's research line."""

    def __init__(
        self, kb: KnowledgeBase, line: str, metrics: list[MetricDef], data: Splits | None
    ) -> None:
        self.kb = kb
        self.line = line
        self.metric = metrics[0]
        self.metric_names = [m.name for m in metrics]
        self.data = data
        self.ids: dict[int, str] = {}
        self._owned_path: Path | None = None
        self._writer: _BackgroundWriter | None = None
        self._check_line()

    @classmethod
    def open(
        cls,
        kb: Any,
        paths: ProjectPaths | None,
        line: str,
        metrics: list[MetricDef],
        data: Splits | None,
    ) -> StudyRecorder | None:
        del paths  # the project's KB is used only when passed explicitly
        base = open_kb(kb)
        if base is None:
            return None
        recorder = cls(base, line, metrics, data)
        if isinstance(kb, str | Path):
            # Opened here from a path: held only while a run records (see session()),
            # so the connection closes and the vector index is saved when a run ends.
            recorder._owned_path = Path(kb)
            base.close()
        return recorder

    @contextlib.contextmanager
    def session(self) -> Iterator[StudyRecorder]:
        """Keep the knowledge base open for one run; close it after if this recorder
        opened it from a path (a KnowledgeBase passed in stays the caller's to close)."""
        if self._owned_path is None:
            yield self
            return
        from soma.knowledge import KnowledgeBase

        self.kb = KnowledgeBase(self._owned_path)
        try:
            yield self
        finally:
            self.kb.close()

    @contextlib.contextmanager
    def background(self) -> Iterator[StudyRecorder]:
        """Within this block :meth:`submit` hands experiments to a writer thread that records
        them in batches (see :func:`embedder_ready` for the embedding model): the knowledge
        base costs the study's trials neither model loading nor per-record writes. Leaving
        the block waits for every write; the first failed write is raised."""
        writer = _BackgroundWriter(self.kb)
        self._writer = writer
        try:
            yield self
        finally:
            self._writer = None
            writer.close()
        writer.raise_error()

    def _existing_line(self) -> Any:
        try:
            return self.kb.get_line(self.line)
        except KnowledgeBaseError:
            return None

    def _check_line(self) -> None:
        existing = self._existing_line()
        if existing is None:
            return
        if existing.metric != self.metric.name or existing.direction != self.metric.direction:
            raise ValidationError(
                "line",
                f"research line {self.line!r} measures {existing.metric} ({existing.direction});"
                f" this study optimizes {self.metric.name} ({self.metric.direction}). "
                "Use another line",
            )

    def ensure_line(self, description: str = "") -> None:
        if self._existing_line() is None:
            self.kb.create_line(
                self.line,
                metric=self.metric.name,
                direction=self.metric.direction,
                description=description or "created by a Soma study",
            )

    def data_fingerprint(self) -> str | None:
        if self.data is None:
            return None
        return self.data.fingerprint  # the one recipe every tool records

    def record(self, record: TrialRecord, **fields: Any) -> str:
        """Record one trial now; its experiment id."""
        experiment = self.experiment(record, **fields)
        experiment_id = self.kb.record(experiment)
        crash_point("trial.recorded")
        self.ids[record.number] = experiment_id
        return experiment_id

    def submit(self, record: TrialRecord, **fields: Any) -> str:
        """Record one trial: in the background inside :meth:`background`, else now. Its id
        is known at once (the experiment's own; idempotency keys are new per trial)."""
        if self._writer is None:
            return self.record(record, **fields)
        self._writer.raise_error()  # a write that failed stops the study at the next trial
        experiment = self.experiment(record, **fields)
        self._writer.put(experiment)
        self.ids[record.number] = str(experiment.id)
        return str(experiment.id)

    def experiment(
        self,
        record: TrialRecord,
        *,
        study_name: str,
        study_uid: str,
        summary: str,
        fingerprint: str,
        graph_params: dict[str, Any],
        seed: int | None,
        tags: list[str],
        origin_key: str | None = None,
        notes: str = "",
    ) -> Any:
        """The knowledge-base experiment of one trial (every metric it computed)."""
        from soma.knowledge import Experiment, new_experiment_id
        from soma.study._result import jsonable

        if not notes and record.status == "pruned" and record.pruned_step is not None:
            notes = f"pruned at step {record.pruned_step}"
        experiment = Experiment(
            id=new_experiment_id(),  # known before the write, which may happen later
            name=f"{study_name} #{record.number}",
            line=self.line,
            pipeline_summary=summary,
            params=jsonable({**graph_params, **record.params}),
            metrics=record.metrics if record.status == "ok" else {},
            primary_metric=self.metric.name,
            direction=self.metric.direction,  # type: ignore[arg-type]
            status=record.status,  # type: ignore[arg-type]
            error=record.error,
            action="tune",
            tags=[*tags, record.status],
            notes=notes,
            started=record.started,
            finished=record.finished,
            duration_s=record.duration_s,
            code_fingerprint=fingerprint or None,
            data_fingerprint=self.data_fingerprint(),
            cache_keys=record.cache_keys,
            seed=seed,
            origin="study",
            idempotency_key=origin_key or f"study:{study_uid}:{record.number}",
        )
        return experiment


def embedder_ready(embedder: Any) -> bool:
    """Whether embedding costs no model load now. A study never waits for all-MiniLM-L6-v2
    (4-5 s of imports and loading on two cores, more than many studies): until something in
    the process has loaded it, trials are recorded without vectors and the first semantic
    query embeds them in one batch."""
    from soma.knowledge import _embed

    if isinstance(embedder, _embed.MiniLMEmbedder):
        return _embed._model is not None
    return True


class _BackgroundWriter:
    """One thread that records queued experiments, as many per transaction as are waiting."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="soma-study-kb", daemon=True)
        self._thread.start()

    def put(self, experiment: Any) -> None:
        self._queue.put(experiment)

    def _loop(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is None
            experiments = [e for e in batch if e is not None]
            if experiments and self._error is None:
                try:
                    self.kb.record_many(experiments, embed=embedder_ready(self.kb.embedder))
                except BaseException as exc:
                    self._error = exc
                else:
                    crash_point("trial.recorded")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, KnowledgeBaseError | ValidationError):
                raise error
            raise KnowledgeBaseError(
                f"recording trials failed: {type(error).__name__}: {error}"
            ) from error


# -- resuming after a kill: the knowledge base and Optuna made to agree ---------------------


def _trial_key(study: Any, number: int) -> str:
    return f"study:{study.user_attrs.get('soma_uid', study.study_name)}:{number}"


def reconcile_trial(
    recorder: StudyRecorder, study: Any, metrics: list[MetricDef], frozen: Any
) -> tuple[str, list[float] | None, dict[str, Any]] | None:
    """The outcome the knowledge base holds for an orphaned trial (recorded, then killed
    before Optuna was told), as ``(state, values, attrs)``; None when it holds none."""
    from soma.study._tracking import read_trial_attrs

    ids = recorder.kb._ids_for_keys([_trial_key(study, frozen.number)])
    if not ids:
        return None
    experiment = recorder.kb.get(next(iter(ids.values())))
    attrs = read_trial_attrs(frozen)
    attrs.update(experiment_id=experiment.id, metrics=dict(experiment.metrics or {}))
    if experiment.status == "ok":
        values = [float(experiment.metrics[m.name]) for m in metrics]
        return "COMPLETE", values, attrs
    if experiment.error:
        attrs["error"] = experiment.error
    return ("PRUNED" if experiment.status == "pruned" else "FAIL"), None, attrs


def record_missing(recorder: StudyRecorder, study: Any, seed: int | None) -> list[int]:
    """Record the finished trials Optuna was told of but the knowledge base never received
    (the process died with them queued for the writer thread); their numbers."""
    from soma.study._result import record_from_frozen
    from soma.study._tracking import read_trial_attrs

    wanted = {}
    for frozen in study.get_trials(deepcopy=False):
        if frozen.state.is_finished() and read_trial_attrs(frozen).get("experiment_id"):
            wanted[_trial_key(study, frozen.number)] = frozen
    if not wanted:
        return []
    missing = [k for k in wanted if k not in recorder.kb._ids_for_keys(list(wanted))]
    done = []
    for key in missing:
        frozen = wanted[key]
        record = record_from_frozen(frozen)
        experiment = recorder.experiment(
            record,
            study_name=study.study_name,
            study_uid=str(study.user_attrs.get("soma_uid", study.study_name)),
            summary=str(study.user_attrs.get("soma_graph", "")),
            fingerprint="",
            graph_params={},
            seed=seed,
            tags=["study", f"study:{study.study_name}"],
        )
        # The id Optuna's trial already names.
        experiment = experiment.model_copy(update={"id": record.experiment_id})
        recorder.kb.record(experiment)
        done.append(frozen.number)
    return done
