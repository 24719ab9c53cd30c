"""Records, lines, validation at the boundary, idempotency, updates, journal, doctests."""

from __future__ import annotations

import doctest
import importlib
import pickle
from datetime import UTC, datetime

import pytest
from kb_helpers import exp

from soma.errors import KnowledgeBaseError, ValidationError
from soma.knowledge import (
    Experiment,
    JournalEntry,
    KnowledgeBase,
    ResearchLine,
    UnknownLineError,
    new_experiment_id,
)

# Issue 3, section 1, field by field: what it names → the attribute(s) that hold it.
EXPERIMENT_FIELDS = {
    "id": ["id"],
    "name": ["name"],
    "hypothesis": ["hypothesis"],
    "research line": ["line"],
    "pipeline (spec and a one-line summary)": ["pipeline_spec", "pipeline_summary"],
    "params": ["params"],
    "metrics (name → float)": ["metrics"],
    "primary metric and its direction": ["primary_metric", "direction"],
    "status": ["status"],
    "error text": ["error"],
    "parent experiment": ["parent_id"],
    "action kind": ["action"],
    "tags": ["tags"],
    "notes": ["notes"],
    "started / finished / duration": ["started", "finished", "duration_s"],
    "code fingerprint": ["code_fingerprint"],
    "data fingerprint": ["data_fingerprint"],
    "cache keys": ["cache_keys"],
    "seed": ["seed"],
    "origin": ["origin"],
    "verdict": ["verdict"],
}
LINE_FIELDS = ["name", "description", "metric", "direction", "created", "status"]
JOURNAL_FIELDS = ["run_id", "iteration", "kind", "payload", "time"]


def test_every_field_the_issue_lists_is_on_the_records() -> None:
    fields = Experiment.model_fields
    for what, names in EXPERIMENT_FIELDS.items():
        assert all(n in fields for n in names), what
    # The closed vocabularies are exactly the issue's.
    choices = {
        "status": {"ok", "failed", "pruned", "running"},
        "action": {"draft", "improve", "debug", "ablate", "tune", "manual"},
        "origin": {"python", "cli", "mcp", "agent", "study"},
        "verdict": {"supported", "refuted", "inconclusive"},
        "direction": {"maximize", "minimize"},
    }
    for field, allowed in choices.items():
        for value in allowed:
            assert getattr(Experiment(name="x", **{field: value}), field) == value
        with pytest.raises(ValueError, match=field):
            Experiment(name="x", **{field: "something-else"})
    assert set(LINE_FIELDS) <= set(ResearchLine.model_fields)
    assert set(JOURNAL_FIELDS) <= set(JournalEntry.model_fields)


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
    assert isinstance(info.value, UnknownLineError) and info.value.field == "line"
    for call in (
        lambda: kb.get_line("imaginary"),
        lambda: kb.trajectory("imaginary"),
        lambda: kb.trend("imaginary"),
        lambda: kb.change_points("imaginary"),
        lambda: kb.best("imaginary"),
        lambda: kb.generate_report("imaginary"),
        lambda: kb.query("x", line="imaginary"),
        lambda: kb.query(line="imaginary"),
        lambda: kb.experiments(line="imaginary"),
        lambda: kb.count(line="imaginary"),
    ):
        with pytest.raises(UnknownLineError, match="imaginary") as info:
            call()
        assert info.value.field == "line"
    assert kb.count() == 0
    again = pickle.loads(pickle.dumps(info.value))  # errors cross process boundaries
    assert (str(again), again.field, again.line) == (str(info.value), "line", "imaginary")


def test_regression_count_of_an_unknown_line_was_silently_zero(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownLineError, match="'typo'"):
        kb.count(line="typo")


def test_update_line_changes_description_and_status_only(kb: KnowledgeBase) -> None:
    kb.create_line("l", metric="accuracy", direction="maximize", description="first")
    line = kb.update_line("l", description="second", status="archived")
    assert (line.description, line.status, line.direction) == ("second", "archived", "maximize")
    assert kb.get_line("l") == line
    assert kb.update_line("l") == line  # nothing to change: unchanged
    with pytest.raises(ValidationError) as info:
        kb.update_line("l", status="paused")
    assert info.value.field == "status"
    with pytest.raises(UnknownLineError) as unknown:
        kb.update_line("nope", status="active")
    assert unknown.value.field == "name"
    with pytest.raises(TypeError):
        kb.update_line("l", direction="minimize")  # type: ignore[call-arg]


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
        status="failed",
        error="Traceback ...\nFloatingPointError: overflow after epoch 3",
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
    # Every field is set to something other than its default, so none escapes the round trip.
    defaults = Experiment(name="x")
    assert [f for f in Experiment.model_fields if f in original.model_fields_set] == [
        f for f in Experiment.model_fields if f not in ("id", "primary_metric", "direction")
    ]
    unset = [
        f
        for f in original.model_fields_set
        if f != "name" and getattr(original, f) == getattr(defaults, f)
    ]
    assert unset == []
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
