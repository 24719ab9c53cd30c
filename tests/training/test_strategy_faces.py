"""A strategy from every face (issue 15): the run_pipeline tool's optional ``strategy``
argument, a Study over a graph with a strategy, and an agent hypothesis that names one;
each records the strategy in the experiment's params (``strategy.kind``, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import soma_tools as T
from soma.project import init_project
from soma.training import DataParallel

# A project filter with the distributed-fitting protocol (the numpy logistic model).
LOGISTIC = '''
from soma.training import LinearModel


class Logistic(LinearModel):
    """Binary logistic regression by full-batch gradient descent."""

    loss = "logistic"
    lr = 0.5
    epochs = 30
'''
SPEC = "StandardScale() >> Logistic()"
DATA_PARALLEL = {"kind": "data_parallel", "num_replicas": 2, "nodes": ["logistic"]}


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    root = init_project(tmp_path / "cancer", example="breast_cancer")
    (root / "filters" / "logistic.py").write_text(LOGISTIC, encoding="utf-8")
    context = T.ToolContext(root, embedder="hashing")
    yield context
    context.close()


def test_run_pipeline_takes_a_strategy_and_records_it(ctx: Any) -> None:
    local = T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC))
    spread = T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, strategy=DATA_PARALLEL))
    # Full-batch gradient descent: a DataParallel round is one Local step, so same scores.
    assert spread.value == pytest.approx(local.value) and 0.85 < spread.value <= 1.0
    params = ctx.kb.get(spread.experiment_id).params
    assert params["strategy.kind"] == "data_parallel" and params["strategy.num_replicas"] == 2
    assert params["strategy.nodes"] == ["logistic"]
    assert not any(k.startswith("strategy") for k in ctx.kb.get(local.experiment_id).params)
    # The strategy is part of the fitted state's key: the DataParallel fit was not a cache hit.
    fit = {n.name: n.fit_cache_hit for n in spread.nodes}
    assert fit["standard_scale"] is True and fit["logistic"] is False


@pytest.mark.parametrize(
    ("strategy", "field"),
    [
        ({"kind": "data_parallel", "num_replicas": 0}, "strategy.num_replicas"),
        ("gossip", "strategy.kind"),
        ({**DATA_PARALLEL, "nodes": ["nope"]}, "strategy.nodes"),
    ],
)
def test_a_bad_strategy_is_refused_naming_the_field(ctx: Any, strategy: Any, field: str) -> None:
    with pytest.raises(T.ToolError) as info:
        T.run_pipeline(ctx, T.RunPipelineInput(spec=SPEC, strategy=strategy))
    assert info.value.field == field, str(info.value)
    assert ctx.kb.experiments() == []  # refused before anything ran


def test_a_filter_without_the_protocol_fails_naming_what_is_missing(ctx: Any) -> None:
    with pytest.raises(T.PipelineFailedError) as info:
        T.run_pipeline(
            ctx,
            T.RunPipelineInput(
                spec="StandardScale() >> LogReg()",
                strategy={"kind": "data_parallel", "num_replicas": 2},
            ),
        )
    assert info.value.node == "standard_scale"
    error = ctx.kb.get(info.value.experiment_id).error  # never a silent Local fit
    assert "TrainingError" in error and "soma.training.DistributedFilter" in error


def test_a_study_over_a_graph_with_a_strategy_records_it(ctx: Any) -> None:
    from soma.experiments import build_graph
    from soma.study import Study

    graph = build_graph(SPEC, project=ctx.project).with_strategy(
        DataParallel(num_replicas=2, nodes=("logistic",))
    )
    metric = ctx.project.metrics[0]
    study = Study(
        graph,
        data=ctx.splits(),
        metric=metric.score,
        direction=metric.direction,
        space={"logistic.lr": [0.1, 0.5]},
        sampler="grid",
        n_trials=2,
        kb=ctx.kb,
        line="strategies",
    )
    result = study.run()
    assert len(result.trials) == 2 and all(t.status == "ok" for t in result.trials)
    records = ctx.kb.experiments(line="strategies")
    assert len(records) == 2
    assert {r.params["strategy.kind"] for r in records} == {"data_parallel"}
    assert sorted(r.params["logistic.lr"] for r in records) == [0.1, 0.5]


@pytest.mark.slow  # a whole agent run with its final report (~10 s on 2 cores)
def test_the_agent_runs_a_hypothesis_that_names_a_strategy(
    ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soma_agent import run_agent
    from tests.agent.agent_helpers import ScriptedServer, anthropic_reply

    proposal = {
        "statement": "Logistic regression trained on two data-parallel replicas scores well.",
        "spec": SPEC,
        "action": "draft",
        "strategy": DATA_PARALLEL,
    }
    server = ScriptedServer()
    try:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        server.script = [anthropic_reply("propose_hypothesis", proposal)]
        result = run_agent(
            ctx, "maximize accuracy", max_experiments=1, planner="anthropic:claude-sonnet-4-6",
            tools=ctx,
        )  # fmt: skip
    finally:
        server.close()
    # The model was offered the field, and the experiment ran with it.
    schema = json.dumps(server.requests[0]["body"]["tools"])
    assert "data_parallel" in schema and "strategy" in schema
    (exp,) = ctx.kb.experiments(run_id=result.run_id)
    assert exp.status == "ok", exp.error
    assert exp.params["strategy.kind"] == "data_parallel"
    hyp = ctx.kb.journal(result.run_id, kinds="hypothesis")[0].payload
    assert hyp["strategy"] == DATA_PARALLEL
