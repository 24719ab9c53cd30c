"""Helpers for the TUI tests: a seeded knowledge base and a wait loop for the Pilot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from textual.pilot import Pilot

from soma.knowledge import Experiment, KnowledgeBase

# Values of the "preprocessing" line in recording order; index 3 failed. The level shifts up
# once the PCA size changes from 8 to 32 (a change point at the 5th successful experiment).
PREP_VALUES = [0.80, 0.81, 0.805, None, 0.81, 0.90, 0.91, 0.905, 0.92]
REG_VALUES = [1.00, 0.90, 0.85, 0.86]
ZCA_HYPOTHESIS = "Whitening the pixel intensities with ZCA removes correlated noise"


def seed(kb: KnowledgeBase) -> dict[str, list[str]]:
    """Two lines with known values, parents, a failure and a change point; returns their ids."""
    kb.create_line(
        "preprocessing",
        metric="accuracy",
        direction="maximize",
        description="which preprocessing helps logistic regression",
    )
    kb.create_line("regularisation", metric="rmse", direction="minimize")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    ids: dict[str, list[str]] = {"preprocessing": [], "regularisation": []}
    parent: str | None = None
    for i, value in enumerate(PREP_VALUES):
        n_components = 8 if i < 5 else 32
        failed = value is None
        parent = kb.record(
            Experiment(
                name=f"prep-{i}",
                line="preprocessing",
                hypothesis=ZCA_HYPOTHESIS if i == 6 else f"PCA with {n_components} components",
                pipeline_spec=f"StandardScale() >> PCA(n_components={n_components}) >> LogReg()",
                pipeline_summary="StandardScale >> PCA >> LogReg",
                params={"pca.n_components": n_components},
                metrics={} if failed else {"accuracy": value},
                status="failed" if failed else "ok",
                error="ValueError: n_components=64 must be <= 63" if failed else None,
                parent_id=parent,
                action="tune" if i else "draft",
                verdict="supported" if i == 5 else None,
                started=start + timedelta(minutes=i),
                duration_s=1.5 + i,
                origin="agent",
            )
        )
        ids["preprocessing"].append(parent)
    for i, value in enumerate(REG_VALUES):
        ids["regularisation"].append(
            kb.record(
                Experiment(
                    name=f"ridge-{i}",
                    line="regularisation",
                    hypothesis=f"Ridge alpha {10.0**-i} shrinks the error",
                    pipeline_spec={
                        "chain": [
                            "StandardScale",
                            {"filter": "Ridge", "params": {"alpha": 10.0**-i}},
                        ]
                    },
                    metrics={"rmse": value},
                    started=start + timedelta(hours=1, minutes=i),
                )
            )
        )
    return ids


async def wait_until(
    pilot: Pilot, predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> None:
    """Let the app run until ``predicate()`` is true; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)
