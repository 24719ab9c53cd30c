"""Helpers shared by the knowledge-base tests (a module, so tests can import them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soma.knowledge import Experiment, KnowledgeBase

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def exp(name: str, line: str | None = "l", i: int = 0, **fields: Any) -> Experiment:
    """An experiment started ``i`` hours after T0 (so order is explicit)."""
    fields.setdefault("started", T0 + timedelta(hours=i))
    return Experiment(name=name, line=line, **fields)


def record_series(
    kb: KnowledgeBase,
    line: str,
    values: list[float],
    *,
    metric: str = "accuracy",
    params: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Record one ok experiment per value, in order, an hour apart."""
    exps = [
        exp(
            f"{line}-{i}",
            line=line,
            i=i,
            metrics={metric: v},
            params=(params[i] if params else {"i": i}),
        )
        for i, v in enumerate(values)
    ]
    return kb.record_many(exps)
