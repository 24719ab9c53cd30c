"""observe: what the knowledge base and the project say before each hypothesis."""

from __future__ import annotations

from typing import Any

from soma_agent._history import experiment_value
from soma_agent._hypothesis import LineSnapshot, Observation, SimilarExperiment
from soma_agent._roles import infer_role

__all__ = ["build_observation", "experiment_row"]

_MAX_LINES = 8
_GOAL_K = 5
_PENDING_K = 3


def experiment_row(exp: Any, metric: str) -> dict[str, Any]:
    return {
        "id": exp.id,
        "status": exp.status,
        "action": exp.action,
        "value": experiment_value(exp, metric),
        "verdict": exp.verdict,
        "pipeline": exp.pipeline_summary or str(exp.pipeline_spec or ""),
        "hypothesis": exp.hypothesis or "",
        "error": (exp.error or "").splitlines()[0][:200] if exp.error else "",
    }


def build_observation(
    tools: Any,
    *,
    goal: str,
    line: str,
    iteration: int,
    n_experiments: int,
    max_experiments: int,
    pending: list[dict[str, Any]],
    no_improvement_for: int,
    similar_cache: dict[str, Any] | None = None,
) -> Observation:
    kb = tools.kb
    ln = kb.get_line(line)
    metric = ln.metric
    best = kb.best(line)
    lines = []
    for other in kb.lines()[:_MAX_LINES]:
        # Each of these reads the line's experiments: once per line and step, not twice.
        other_best = best if other.name == line else kb.best(other.name)
        trend = kb.trend(other.name)
        lines.append(
            LineSnapshot(
                name=other.name,
                metric=other.metric,
                direction=other.direction,
                trend=str(getattr(trend, "value", trend)),
                n_experiments=kb.count(line=other.name),
                best_value=experiment_value(other_best, other.metric) if other_best else None,
                best_experiment_id=other_best.id if other_best else None,
                best_pipeline=other_best.pipeline_summary if other_best else None,
            )
        )
    recent = kb.experiments(line=line, order="-started", limit=8)
    failures = kb.experiments(line=line, status="failed", order="-started", limit=3)
    similar, unsearchable = _similar(kb, goal, pending, similar_cache) if kb.count() else ([], 0)
    catalog = tools.catalog()
    filters = [
        {
            "name": info.name,
            "role": infer_role(info),
            "doc": info.doc,
            "params": {k: _short_param(v) for k, v in info.params.items()},
        }
        for info in catalog.filters.values()
    ]
    return Observation(
        goal=goal,
        line=line,
        metric=metric,
        direction=ln.direction,
        iteration=iteration,
        n_experiments=n_experiments,
        experiments_left=max(0, max_experiments - n_experiments),
        best_value=experiment_value(best, metric) if best else None,
        best_experiment_id=best.id if best else None,
        best_pipeline=best.pipeline_summary if best else None,
        lines=lines,
        recent=[experiment_row(e, metric) for e in reversed(recent)],
        failures=[experiment_row(e, metric) for e in failures],
        similar=similar,
        not_yet_searchable=unsearchable,
        pending=pending,
        filters=filters,
        no_improvement_for=no_improvement_for,
    )


#: A cached semantic search is redone once the knowledge base grew by this many experiments.
_SIMILAR_REFRESH = 10


def _similar(
    kb: Any, goal: str, pending: list[dict[str, Any]], cache: dict[str, Any] | None = None
) -> tuple[list[SimilarExperiment], int]:
    """Past experiments close in meaning to the goal and to each hypothesis still waiting.

    The whole knowledge base is searched, not only the run's line: related work filed under
    another line (same data, another question) is exactly what a planner should not miss.
    Each experiment is listed once, under the first query that found it. With ``cache``
    (one dict per run) the answer is reused until the queries change or the knowledge base
    grew by ``_SIMILAR_REFRESH`` experiments: each search embeds its query text, which costs
    far more than the rest of an observation with a neural embedder, and the run's own
    latest results are in ``recent`` anyway.

    The second value is how many experiments the search could not see yet: recorded, but
    still waiting for the background embedding or its model (searchable once it is done).
    """
    if not kb.search_ready():
        # The model is still loading in the background: searching now would stall the loop
        # for seconds. Nothing is searched (and nothing cached); the next step tries again.
        return [], kb.count()
    if cache is not None:
        key = repr((goal, [p.get("statement") for p in pending]))
        count = kb.count()
        hit = cache.get(key)
        if hit is not None and count - hit[0] < _SIMILAR_REFRESH:
            return list(hit[1]), hit[2]
        found, unsearchable = _similar(kb, goal, pending)
        cache.clear()
        cache[key] = (count, found, unsearchable)
        return list(found), unsearchable
    queries = [("goal", goal, _GOAL_K)] + [
        (f"pending: {p.get('statement')}", str(p.get("statement") or ""), _PENDING_K)
        for p in pending
    ]
    seen: set[str] = set()
    out: list[SimilarExperiment] = []
    for label, text, k in queries:
        if not text.strip():
            continue
        for hit in kb.query(text, k=k):
            e = hit.experiment
            if e.id in seen:
                continue
            seen.add(e.id)
            out.append(
                SimilarExperiment(
                    id=e.id,
                    query=label,
                    line=e.line,
                    score=float(hit.score or 0.0),
                    value=experiment_value(e),
                    status=e.status,
                    hypothesis=e.hypothesis or "",
                    pipeline=e.pipeline_summary or "",
                )
            )
    return out, kb.not_yet_searchable()


def _short_param(value: Any) -> Any:
    if isinstance(value, dict) and "type" in value:
        kind = value["type"]
        if kind == "choice":
            return f"one of {value.get('choices')} (default {value.get('default')!r})"
        log = ", log" if value.get("log") else ""
        bounds = f"[{value.get('low')}, {value.get('high')}{log}]"
        return f"{kind} in {bounds} (default {value.get('default')!r})"
    return value
