"""The run's final answer: selected on validation, scored once on test, ties and change points.

Picking the best of many validation scores is biased upwards (the winner's luck is part of
its score), so the report does not stop there:

* the pick is the best validation result of the line; the **runner-up** is the best result
  of another configuration; a paired test on the validation samples says whether the two
  are a **tie within noise** (then both are named);
* when the project has a test split, the pick (and a tied runner-up) is refitted on the
  training split and scored **once** on the test split, with a 95 % bootstrap interval over
  the test samples (``_BOOT`` resamples, fixed seed);
* every new best of the run is explained by **what changed** against the previous best:
  the pipeline's structure, its params, the filters' code (an experiment's recorded code
  fingerprint is compared with the one its spec builds today), the data fingerprint, or
  the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soma.vocabulary import Direction
from soma_agent._history import experiment_value
from soma_agent._losses import LossStore
from soma_agent._paired import PairedTest, paired_test

__all__ = ["FinalAnswer", "TestScore", "change_of", "final_answer"]

_BOOT = 1000
_SEED = 7


@dataclass(frozen=True)
class TestScore:
    experiment_id: str
    value: float
    interval: tuple[float, float]
    n: int


@dataclass
class FinalAnswer:
    pick: Any | None
    pick_value: float | None
    runner_up: Any | None = None
    runner_up_value: float | None = None
    comparison: PairedTest | None = None
    tie: bool = False
    exact_ties: list[str] = field(default_factory=list)
    test: list[TestScore] = field(default_factory=list)
    test_note: str = ""


def _graph(tools: Any, exp: Any) -> Any:
    from soma.experiments import build_graph

    return build_graph(exp.pipeline_spec, project=tools.project, params={}, seed=exp.seed)


def score_on_test(tools: Any, exp: Any, metric: Any) -> TestScore | None:
    """Refit ``exp``'s pipeline on train, score ``metric`` once on test, with an interval."""
    splits = tools.splits()
    if splits.test is None:
        return None
    graph = _graph(tools, exp)
    graph.fit(*splits.train)
    x_test, y_test = splits.test
    prediction = graph.forward(x_test)
    value = metric.score(y_test, prediction)
    y, p = np.asarray(y_test), np.asarray(prediction)
    rng = np.random.default_rng(_SEED)
    boot = []
    for _ in range(_BOOT):
        index = rng.integers(0, len(y), size=len(y))
        try:
            boot.append(metric.score(y[index], p[index]))
        except Exception:  # a resample the metric cannot score (one class only): skip it
            continue
    low, high = np.percentile(boot, [2.5, 97.5]) if boot else (value, value)
    return TestScore(exp.id, float(value), (float(low), float(high)), len(y))


def _config(exp: Any) -> str:
    return str(exp.pipeline_summary or exp.pipeline_spec)


def final_answer(tools: Any, line: str, metric_name: str, direction: str) -> FinalAnswer:
    kb = tools.kb
    sign = Direction(direction).sign
    scored = [
        (e, v)
        for e in kb.experiments(line=line, status="ok")
        if (v := experiment_value(e, metric_name)) is not None
    ]
    if not scored:
        return FinalAnswer(None, None)
    scored.sort(key=lambda ev: (-sign * ev[1], str(ev[0].started), ev[0].id))
    pick, pick_value = scored[0]
    answer = FinalAnswer(pick, pick_value)
    answer.exact_ties = [e.id for e, v in scored[1:] if v == pick_value]
    other = next(((e, v) for e, v in scored[1:] if _config(e) != _config(pick)), None)
    if other is not None:
        answer.runner_up, answer.runner_up_value = other
        store = LossStore(tools.project.state_dir)
        a, b = store.get(other[0].id), store.get(pick.id)
        if a is not None and b is not None and a.shape == b.shape:
            answer.comparison = paired_test(a, b)
            answer.tie = not answer.comparison.significant
    metric = next((m for m in tools.project.metrics if m.name == metric_name), None)
    try:
        has_test = tools.splits().test is not None
    except Exception as exc:
        answer.test_note = f"the data could not be loaded to score the test split: {exc}"
        return answer
    if not has_test:
        answer.test_note = "the project has no test split, so the pick is not scored on one"
    elif metric is None or metric.fn is None:
        answer.test_note = f"metric {metric_name!r} has no function to score the test split"
    else:
        for exp in [pick] + ([answer.runner_up] if answer.tie else []):
            try:
                score = score_on_test(tools, exp, metric)
            except Exception as exc:
                answer.test_note = f"scoring {exp.id} on the test split failed: {exc}"
                break
            if score is not None:
                answer.test.append(score)
    return answer


def change_of(tools: Any, old: Any, new: Any, parse: Any) -> str:
    """Which of structure, params, code, data and seed differ between two experiments."""
    from soma_agent._pipelines import candidate_from_experiment

    classes = tools.catalog().classes()
    a = candidate_from_experiment(old, classes, parse)
    b = candidate_from_experiment(new, classes, parse)
    parts = []
    if a is None or b is None:
        if _config(old) != _config(new):
            parts.append("pipeline")
    else:
        if a.structure != b.structure:
            parts.append(f"structure ({a.structure_text} → {b.structure_text})")
        elif a.params_key() != b.params_key():
            changed = [
                f"{sa.name}.{k}"
                for sa, sb in zip(a.steps, b.steps, strict=True)
                for (k, va), (_, vb) in zip(sa.params, sb.params, strict=False)
                if va != vb
            ]
            parts.append("params (" + ", ".join(changed) + ")")
    if _code_changed(tools, old) or _code_changed(tools, new):
        parts.append("code (a filter's source differs from today's)")
    if old.data_fingerprint != new.data_fingerprint:
        parts.append("data")
    if old.seed != new.seed:
        parts.append(f"seed ({old.seed} → {new.seed})")
    return ", ".join(parts) or "nothing recorded (a repeat of the same configuration)"


def _code_changed(tools: Any, exp: Any) -> bool:
    """True when neither the spec alone nor the spec with the recorded params builds a
    graph with the experiment's recorded code fingerprint today."""
    if not exp.code_fingerprint:
        return False
    from soma.experiments import build_graph

    for params in ({}, exp.params or {}):
        try:
            graph = build_graph(
                exp.pipeline_spec, project=tools.project, params=params, seed=exp.seed
            )
            if graph.fingerprint() == exp.code_fingerprint:
                return False
        except Exception:  # e.g. recorded params that are not settable: try the next
            continue
    return True
