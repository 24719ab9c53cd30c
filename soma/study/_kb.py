"""Recording study trials (and PBT members) as experiments in the knowledge base."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.errors import KnowledgeBaseError, ValidationError

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

    def record(
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
    ) -> str:
        from soma.knowledge import Experiment
        from soma.study._result import jsonable

        if not notes and record.status == "pruned" and record.pruned_step is not None:
            notes = f"pruned at step {record.pruned_step}"
        experiment = Experiment(
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
        experiment_id = self.kb.record(experiment)
        self.ids[record.number] = experiment_id
        return experiment_id
