"""The temporal knowledge base through the tools and MCP (issue 16): query's verdict and
novelty, get_trajectory's hypotheses, the soma://lines/{name}/hypotheses resource."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import soma_tools as T
from soma.knowledge import Experiment, HashingEmbedder, KnowledgeBase
from soma.project import init_project

CONV = [
    f"convolution net with dropout {p} and wider layers" for p in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
]
TREES = [f"gradient boosted trees with depth {d} on raw pixels" for d in (2, 3, 4, 5, 6, 7)]


def test_tools_and_resource_carry_the_temporal_side(tmp_path: Path) -> None:
    from mcp import Client

    from soma_mcp.server import create_server

    root = Path(init_project(tmp_path / "p", example="digits"))
    now = datetime.now(UTC) - timedelta(hours=13)
    kb = KnowledgeBase(root / ".soma" / "kb.sqlite", embedder=HashingEmbedder())
    kb.create_line("l", metric="accuracy", direction="maximize")
    ids = kb.record_many(
        [
            Experiment(
                name=f"try {i}",
                line="l",
                hypothesis=t,
                started=now + timedelta(hours=i),
                verdict="refuted" if i < 6 else "supported",
                metrics={"accuracy": 0.7 if i < 6 else 0.9},
            )
            for i, t in enumerate(CONV + TREES)
        ]
    )
    ctx = T.ToolContext(root, kb=kb)
    out = T.query_knowledge_base(
        ctx, T.QueryKnowledgeBaseInput(text=CONV[3], verdict="refuted", since="30d", k=3)
    )
    assert out.novelty is not None and out.novelty < 0.5
    assert {h.id for h in out.hits} <= set(ids[:6]) and "novelty" in out.render()
    fresh = T.query_knowledge_base(
        ctx, T.QueryKnowledgeBaseInput(text=TREES[0], verdict="refuted", since="30d")
    )
    assert fresh.novelty is not None and fresh.novelty > out.novelty + 0.3
    assert T.query_knowledge_base(ctx, T.QueryKnowledgeBaseInput(status="ok")).novelty is None

    plain = T.get_trajectory(ctx, T.GetTrajectoryInput(research_line="l"))
    assert plain.direction_changes is None
    path = T.get_trajectory(ctx, T.GetTrajectoryInput(research_line="l", hypotheses=True))
    assert [c.experiment_id for c in path.direction_changes or []] == [ids[6]]
    assert path.hypotheses_uri == "soma://lines/l/hypotheses"
    assert "focus moved from" in path.render()

    async def read(uri: str) -> Any:
        async with Client(create_server(ctx)) as client:
            tools = await client.list_tools()
            assert len(tools.tools) == 13  # arguments and a resource, no new tool
            return json.loads((await client.read_resource(uri)).contents[0].text)

    data = asyncio.run(read("soma://lines/l/hypotheses"))
    assert [c["experiment_id"] for c in data["direction_changes"]] == [ids[6]]
    assert len(data["points"]) == 12 and data["metric_change_points"]
    kb.close()
