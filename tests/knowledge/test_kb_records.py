"""Records, lines, validation at the boundary, idempotency, updates, journal, doctests."""

from __future__ import annotations

import doctest
import importlib
from datetime import UTC, datetime

import pytest
from kb_helpers import exp

from soma.errors import KnowledgeBaseError, ValidationError
from soma.knowledge import Experiment, KnowledgeBase, new_experiment_id


def test_line_direction_is_declared_and_validated(kb: KnowledgeBase) -> None:
    with pytest.raises(ValidationError) as info:
        kb.create_line("l", metric="accuracy", direction="maximise")
    assert info.value.field == "direction"
    assert "maximise" in str(info.value) and "'maximize' or 'minimize'" in str(info.value)
    line = kb.create_line("l", metric="accuracy", direction="maximize", description="d")
    assert (line.metric, line.direction, line.description) == ("accuracy", "maximize", "d")
    with pytest.raises(KnowledgeBaseError, match="already exists"):
        kb.create_line("l", metric="accuracy", direction="maximize")
    assert [ln.name for ln in kb.lines()] == ["l"]


def test_ensure_line_creates_or_checks(kb: KnowledgeBase) -> None:
    made = kb.ensure_line("loss-line", metric="loss", direction="minimize")
    again = kb.ensure_line("loss-line", metric="loss", direction="minimize")
    assert again == made
    with pytest.raises(ValidationError) as info:
        kb.ensure_line("loss-line", metric="loss", direction="maximize")
    assert info.value.field == "direction" and "'minimize'" in str(info.value)
    with pytest.raises(ValidationError) as info:
        kb.ensure_line("loss-line", metric="mae", direction="minimize")
    assert info.value.field == "metric"


def test_unknown_line_is_an_error_naming_it(kb: KnowledgeBase) -> None:
    kb.create_line("real", metric="accuracy", direction="maximize")
    with pytest.raises(KnowledgeBaseError) as info:
        kb.record(exp("x", line="imaginary"))
    assert "'imaginary'" in str(info.value) and "'real'" in str(info.value)
    for call in (
        lambda: kb.get_line("imaginary"),
        lambda: kb.trajectory("imaginary"),
        lambda: kb.query("x", line="imaginary"),
        lambda: kb.experiments(line="imaginary"),
    ):
        with pytest.raises(KnowledgeBaseError, match="imaginary"):
            call()
    assert kb.count() == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_metric_is_refused_naming_the_metric(kb: KnowledgeBase, bad: float) -> None:
    with pytest.raises(ValueError, match="'accuracy' must be a finite number"):
        Experiment(name="x", metrics={"accuracy": bad})
    kb.create_line("l", metric="accuracy", direction="maximize")
    exp_id = kb.record(exp("ok", metrics={"accuracy": 0.5}))
    with pytest.raises(ValidationError) as info:
        kb.update(exp_id, metrics={"accuracy": bad})
    assert info.value.field == "metrics" and "'accuracy'" in str(info.value)
    with pytest.raises(ValidationError, match="accuracy"):
        kb.record({"name": "as dict", "line": "l", "metrics": {"accuracy": bad}})
    assert kb.get(exp_id).metrics == {"accuracy": 0.5}
    assert kb.count() == 1


def test_record_fills_line_defaults_and_round_trips_every_field(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    original = Experiment(
        name="full",
        hypothesis="scaling helps",
        line="l",
        pipeline_spec={"chain": ["Scale()", "LogReg(C=1.0)"]},
        pipeline_summary="Scale >> LogReg(C=1.0)",
        params={"logreg.C": 1.0, "nested": {"a": [1, 2]}},
        metrics={"accuracy": 0.93, "loss": 0.21},
        status="ok",
        parent_id="exp-parent",
        action="improve",
        tags=["scaling", "baseline", "scaling"],
        notes="first try",
        started=datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        finished=datetime(2025, 1, 2, 3, 5, 0, tzinfo=UTC),
        duration_s=54.9,
        code_fingerprint="c0de",
        data_fingerprint="da7a",
        cache_keys={"scale": "k1"},
        seed=7,
        origin="agent",
        verdict="supported",
        idempotency_key="run-1:h1",
        run_id="run-1",
    )
    exp_id = kb.record(original)
    stored = kb.get(exp_id)
    assert stored.id == exp_id and exp_id.startswith("exp-")
    assert stored.primary_metric == "accuracy" and stored.direction == "maximize"
    assert stored.tags == ["scaling", "baseline"]
    expected = original.model_copy(
        update={"id": exp_id, "primary_metric": "accuracy", "direction": "maximize"}
    )
    assert stored == expected


def test_direction_contradicting_the_line_is_refused(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="loss", direction="minimize")
    with pytest.raises(ValidationError) as info:
        kb.record(exp("x", metrics={"loss": 0.1}, direction="maximize"))
    assert info.value.field == "direction"


def test_idempotency_key_returns_the_first_id_and_writes_once(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    first = kb.record(exp("a", metrics={"accuracy": 0.5}, idempotency_key="k-1"))
    again = kb.record(exp("a (retry)", metrics={"accuracy": 0.9}, idempotency_key="k-1"))
    assert again == first
    assert kb.count() == 1 and kb.get(first).name == "a"
    batch = kb.record_many(
        [
            exp("b", idempotency_key="k-2"),
            exp("b twice in one batch", idempotency_key="k-2"),
            exp("c", idempotency_key="k-1"),
            exp("d"),
        ]
    )
    assert batch[0] == batch[1] and batch[2] == first and len(set(batch)) == 3
    assert kb.count() == 3


def test_duplicate_explicit_id_is_refused(kb: KnowledgeBase) -> None:
    kb.record(Experiment(id="mine-1", name="x"))
    with pytest.raises(KnowledgeBaseError, match="mine-1"):
        kb.record(Experiment(id="mine-1", name="y"))
    assert kb.get("mine-1").name == "x"


def test_ids_are_unique_and_sort_by_creation() -> None:
    ids = [new_experiment_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_update_changes_fields_and_refuses_bad_ones(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    exp_id = kb.record(exp("run", status="running"))
    done = kb.update(exp_id, status="ok", metrics={"accuracy": 0.8}, verdict="refuted")
    assert (done.status, done.metrics, done.verdict) == ("ok", {"accuracy": 0.8}, "refuted")
    assert kb.get(exp_id) == done
    with pytest.raises(ValidationError) as info:
        kb.update(exp_id, colour="red")
    assert info.value.field == "colour"
    with pytest.raises(ValidationError) as info:
        kb.update(exp_id, idempotency_key="other")
    assert info.value.field == "idempotency_key"
    with pytest.raises(ValidationError) as info:
        kb.update(exp_id, status="exploded")
    assert info.value.field == "status"
    with pytest.raises(KnowledgeBaseError, match="no experiment with id 'nope'"):
        kb.update("nope", status="ok")
    with pytest.raises(KnowledgeBaseError, match="'elsewhere'"):
        kb.update(exp_id, line="elsewhere")


def test_experiments_filters_order_and_limit(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize")
    kb.create_line("m", metric="accuracy", direction="maximize")
    kb.record_many(
        [
            exp("late", i=5, origin="agent"),
            exp("early", i=1, status="failed", error="boom"),
            exp("mid", line="m", i=3, run_id="run-x"),
        ]
    )
    assert [e.name for e in kb.experiments()] == ["early", "mid", "late"]
    assert [e.name for e in kb.experiments(order="-started", limit=2)] == ["late", "mid"]
    assert [e.name for e in kb.experiments(line="l")] == ["early", "late"]
    assert [e.name for e in kb.experiments(status="failed")] == ["early"]
    assert [e.name for e in kb.experiments(origin=["agent", "cli"])] == ["late"]
    assert [e.name for e in kb.experiments(run_id="run-x")] == ["mid"]
    assert kb.count(line="l") == 2 and kb.count(status=["ok"]) == 2
    with pytest.raises(ValidationError) as info:
        kb.experiments(order="sideways")
    assert info.value.field == "order"
    with pytest.raises(ValidationError) as info:
        kb.experiments(status="fine")
    assert info.value.field == "status"


def test_journal_appends_in_order_and_reads_after_an_id(kb: KnowledgeBase) -> None:
    a = kb.journal_append("run-1", 0, "run_started", {"goal": "g", "approve": True})
    b = kb.journal_append("run-2", 0, "run_started", {"goal": "h"})
    c = kb.journal_append("run-1", 1, "hypothesis", {"id": "h1", "params": {"C": 1.0}})
    assert a < b < c
    entries = kb.journal("run-1")
    assert [(e.id, e.iteration, e.kind) for e in entries] == [
        (a, 0, "run_started"),
        (c, 1, "hypothesis"),
    ]
    assert entries[1].payload == {"id": "h1", "params": {"C": 1.0}}
    assert [e.id for e in kb.journal("run-1", after_id=a)] == [c]
    assert [e.kind for e in kb.journal("run-1", kinds="hypothesis")] == ["hypothesis"]
    assert kb.journal_runs() == ["run-1", "run-2"]
    with pytest.raises(ValidationError) as info:
        kb.journal_append("run-1", -1, "x", {})
    assert info.value.field == "iteration"
    with pytest.raises(ValidationError) as info:
        kb.journal_append("run-1", 2, "x", {"thing": object()})
    assert info.value.field == "payload.thing"


@pytest.mark.parametrize(
    "module",
    ["_where", "_records", "_embed", "_analytics", "_paths", "_kb", "__init__"],
)
def test_docstring_examples_run(module: str) -> None:
    name = "soma.knowledge" + ("" if module == "__init__" else f".{module}")
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0 and result.attempted > 0
