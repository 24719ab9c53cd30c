"""Pieces of the agent: roles, candidates, TPE families, budget, verdicts, settings, debug."""

from __future__ import annotations

from typing import Any

import pytest

from soma.errors import ValidationError
from soma_agent import Observation, PlannerContext, judge, run_agent
from soma_agent._budget import BudgetExceededError, UsageMeter, price_for
from soma_agent._pipelines import Candidate, Step, candidate_from_experiment
from soma_agent._planner import parse_planner
from soma_agent._planner_builtin import BuiltinPlanner
from soma_agent._roles import infer_role
from soma_agent._settings import AgentSettings
from soma_agent._tpe import FamilySpace, tpe_propose
from soma_agent.run_control import new_run_id, send_control

BROKEN = '''
from soma import Filter


class Exploder(Filter):
    """Raises on purpose while fitting."""

    def fit(self, x, y=None):
        raise ValueError("boom in fit")

    def forward(self, x, state):
        return x
'''


def test_roles_of_the_example_filters(tools: Any) -> None:
    roles = {n: infer_role(i) for n, i in tools.catalog().filters.items()}
    assert roles == {
        "KNN": "model", "LogReg": "model", "RandomForest": "model", "SGD": "model",
        "SVC": "model", "MinMaxScale": "scaler", "RobustScale": "scaler",
        "StandardScale": "scaler", "PCA": "reducer", "SelectKBest": "reducer",
    }  # fmt: skip


def test_candidate_round_trip(tools: Any) -> None:
    classes = tools.catalog().classes()
    cand = Candidate((Step("StandardScale"), Step("SVC", (("C", 3.14159), ("gamma", 0.01)))))
    assert cand.spec() == "StandardScale() >> SVC(C=3.142, gamma=0.01)"

    class Exp:
        pipeline_spec = cand.spec()
        params: dict[str, Any] = {"svc.C": 2.5}

    back = candidate_from_experiment(Exp, classes, tools.project.parse_spec)
    assert back is not None and back.structure == ("StandardScale", "SVC")
    assert back.steps[1].param_dict == {"C": 2.5, "gamma": 0.01}  # params override the spec


def test_family_space_tpe_stays_in_the_family(tools: Any) -> None:
    classes = tools.catalog().classes()
    space = FamilySpace("SVC", ["MinMaxScale", "StandardScale"], ["PCA"], classes)
    assert space.encode(Candidate((Step("KNN"),))) is None
    good = Candidate((Step("StandardScale"), Step("SVC", (("C", 10.0), ("gamma", 0.01)))))
    params, _dists = space.encode(good)  # type: ignore[misc]
    assert params == {"scaler": "StandardScale", "reducer": "none", "SVC.C": 10.0,
                      "SVC.gamma": 0.01}  # fmt: skip
    history = [(good, 0.98), (Candidate((Step("SVC", (("C", 1.0), ("gamma", 0.1))),)), 0.5)]
    proposals = {tpe_propose(space, history, "maximize", seed).spec() for seed in range(4)}
    for spec in proposals:
        tools.project.parse_spec(spec)  # every proposal is a valid pipeline
        assert spec.endswith(")") and "SVC(" in spec
    assert len(proposals) > 1
    assert (
        tpe_propose(space, history, "maximize", 7).spec()
        == tpe_propose(space, history, "maximize", 7).spec()
    )


def test_budget_meter_is_a_hard_cap() -> None:
    meter = UsageMeter(0.01, price_for("gpt-4o"))  # $2.5 / $10 per million
    meter.reserve(1000, 500)  # worst case $0.0075 fits
    assert meter.add(1000, 500) == pytest.approx(0.0075)
    with pytest.raises(BudgetExceededError, match="dollar budget"):
        meter.reserve(1000, 500)
    assert price_for("gpt-4o-mini-2024-07-18").input_per_mtok == 0.15  # longest prefix wins
    assert price_for("llama3", base_url="http://localhost:11434/v1", local_free=True).cost(
        10**6, 10**6
    ) == 0.0  # fmt: skip


def test_verdict_rules() -> None:
    assert judge(None, 0.9, "maximize", status="failed", error="boom").verdict == "refuted"
    assert judge(0.95, None, "maximize").verdict == "inconclusive"
    assert judge(0.95, 0.91, "maximize").verdict == "supported"
    assert judge(0.9101, 0.91, "maximize").verdict == "inconclusive"  # under the 0.1% floor
    assert judge(0.80, 0.91, "maximize").verdict == "refuted"
    # minimize: lower is better
    assert judge(0.10, 0.20, "minimize").verdict == "supported"
    # repeats widen the threshold
    noisy = judge(0.95, 0.91, "maximize", repeat_values=[0.85, 0.95, 0.90])
    assert noisy.verdict == "inconclusive" and "repeats" in noisy.reason
    assert noisy.test["rule"] == "threshold"
    assert judge(0.91, 0.91, "maximize", expected="no_change").verdict == "supported"
    assert judge(0.85, 0.91, "maximize", expected="degrade").verdict == "supported"


def test_planner_and_settings_validation() -> None:
    assert parse_planner("builtin") == ("builtin", None, None)
    assert parse_planner("anthropic:claude-haiku-4-5") == ("anthropic", "claude-haiku-4-5", None)
    assert parse_planner("openai-compatible:http://h:1/v1#m") == (
        "openai-compatible", "m", "http://h:1/v1"
    )  # fmt: skip
    for bad in ("openai", "anthropic:", "openai-compatible:nourl#m", "openai-compatible:http://h"):
        with pytest.raises(ValidationError, match="planner"):
            parse_planner(bad)
    with pytest.raises(ValidationError, match="budget_usd"):
        AgentSettings(goal="g", budget_usd=-1)
    with pytest.raises(ValidationError, match="patience"):
        AgentSettings(goal="g", patience=0)
    assert AgentSettings(goal="g", max_experiments=5).iteration_limit == 20


def test_builtin_debug_drops_the_failing_step(tools: Any) -> None:
    history = [
        {
            "iteration": 1,
            "action": "improve",
            "spec": "StandardScale() >> PCA(n_components=10) >> LogReg(C=2.0)",
            "status": "failed",
            "experiment_id": "exp-x",
            "error": "node 'pca' failed during fit: ValueError: nope",
        }
    ]
    ctx = PlannerContext(
        tools=tools, run_id="run-t", iteration=2, seed=0, line=tools.resolve_line(None).name,
        metric="accuracy", direction="maximize", max_experiments=10, n_experiments=1,
        run_history=history,
    )  # fmt: skip
    obs = Observation(goal="g", line=ctx.line, metric="accuracy", direction="maximize", iteration=2)
    proposal = BuiltinPlanner().propose(obs, ctx)
    assert proposal.action == "debug"
    assert proposal.spec == "StandardScale() >> LogReg(C=2.0)"
    assert "exp-x" in proposal.statement and "dropping PCA" in proposal.statement


def test_failed_experiment_is_refuted_then_debugged(tools: Any) -> None:
    (tools.project.filters_dir / "broken.py").write_text(BROKEN, encoding="utf-8")
    run_id = new_run_id()
    send_control(
        tools.kb, run_id, "inject",
        hypothesis={"statement": "An exploding step is harmless.",
                    "spec": "StandardScale() >> Exploder() >> LogReg(C=1.0)"},
    )  # fmt: skip
    result = run_agent(tools, "maximize validation accuracy", max_experiments=2, run_id=run_id,
                       tools=tools)  # fmt: skip
    results = [e.payload for e in tools.kb.journal(run_id, kinds="experiment_result")]
    assert results[0]["status"] == "failed" and "boom in fit" in results[0]["error"]
    assert results[0]["experiment_id"] is not None  # recorded as a failed experiment
    verdicts = [e.payload["verdict"] for e in tools.kb.journal(run_id, kinds="verdict")]
    assert verdicts[0] == "refuted"
    second = tools.kb.journal(run_id, kinds="hypothesis")[1].payload
    assert second["action"] == "debug" and "Exploder" not in second["spec"]
    assert results[1]["status"] == "ok" and result.n_experiments == 2
    assert tools.kb.get(results[0]["experiment_id"]).verdict == "refuted"


def test_regression_one_validation_sample_is_not_an_effect() -> None:
    # On 359 digits validation samples one sample is 0.28% of accuracy, but the 0.1% floor
    # called a one-sample difference 'refuted'/'supported'.
    from soma_agent._verdict import metric_resolution

    one_sample = 1 / 359
    resolution = metric_resolution("accuracy", 359)
    assert resolution is not None and "359" in resolution[1]
    assert judge(0.9749 - one_sample, 0.9749, "maximize", resolution=resolution).verdict == (
        "inconclusive"
    )
    assert judge(0.9749 + 2 * one_sample, 0.9749, "maximize", resolution=resolution).verdict == (
        "supported"
    )
    assert judge(0.9749 - one_sample, 0.9749, "maximize").verdict == "refuted"  # without it
    assert metric_resolution("mse", 359) is None and metric_resolution("accuracy", 0) is None
