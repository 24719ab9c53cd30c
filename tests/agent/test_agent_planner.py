"""The built-in planner's moves on a knowledge base with a known history: TPE over the
line's results, ablation of the best pipeline's steps, a pivot when a family plateaus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soma.knowledge import Experiment
from soma_agent import Observation, PlannerContext
from soma_agent._planner_builtin import BuiltinPlanner

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DRAFTS = {
    "KNN": "StandardScale() >> KNN(n_neighbors=5, weights='uniform')",
    "LogReg": "StandardScale() >> LogReg(C=1.0)",
    "RandomForest": "StandardScale() >> RandomForest(n_estimators=100, max_depth=16)",
    "SGD": "StandardScale() >> SGD(epochs=20, learning_rate=0.01, alpha=0.0001, loss='log_loss')",
}


def _svc(c: float) -> str:
    return f"StandardScale() >> SVC(C={c}, gamma=0.01)"


class History:
    """Experiments recorded straight into the KB, in order, as an earlier session left them."""

    def __init__(self, tools: Any) -> None:
        self.tools = tools
        self.line = tools.resolve_line(None).name
        self.ids: list[str] = []

    def add(self, spec: str, value: float) -> str:
        exp_id = self.tools.kb.record(
            Experiment(
                name=f"e{len(self.ids)}",
                line=self.line,
                pipeline_spec=spec,
                pipeline_summary=spec,
                metrics={"accuracy": value},
                started=START + timedelta(minutes=len(self.ids)),
            )
        )
        self.ids.append(exp_id)
        return exp_id

    def drafts(self, values: dict[str, float]) -> None:
        for model, spec in DRAFTS.items():
            self.add(spec, values.get(model, 0.9))

    def propose(self, run_history: list[dict[str, Any]] | None = None, seed: int = 0) -> Any:
        ctx = PlannerContext(
            tools=self.tools, run_id="run-t", iteration=len(run_history or []) + 1, seed=seed,
            line=self.line, metric="accuracy", direction="maximize", max_experiments=20,
            n_experiments=len(run_history or []), run_history=list(run_history or []),
        )  # fmt: skip
        obs = Observation(
            goal="g", line=self.line, metric="accuracy", direction="maximize", iteration=1
        )
        return BuiltinPlanner().propose(obs, ctx)


def test_improve_asks_tpe_fitted_on_the_line_history(tools: Any) -> None:
    h = History(tools)
    h.drafts({})
    for c, value in ((1.0, 0.95), (3.0, 0.96), (10.0, 0.97), (30.0, 0.98)):
        best = h.add(_svc(c), value)
    proposal = h.propose()
    assert proposal.action == "improve" and proposal.parent_id == best
    # Every SVC result in the KB (none of them from this run) was told to TPE.
    assert "TPE over the 4 results of SVC pipelines" in proposal.rationale
    assert proposal.spec.endswith(")") and "SVC(" in proposal.spec
    tools.project.parse_spec(proposal.spec)
    assert proposal.spec not in {_svc(c) for c in (1.0, 3.0, 10.0, 30.0)}
    assert h.propose().spec == proposal.spec  # deterministic for a seed
    assert f"({best})" in proposal.statement or best in proposal.statement


def test_few_results_get_a_local_step_not_tpe(tools: Any) -> None:
    h = History(tools)
    h.drafts({})
    best = h.add(_svc(10.0), 0.97)
    proposal = h.propose()
    assert proposal.action == "improve" and proposal.parent_id == best
    assert "local step around the family's best" in proposal.rationale


def test_every_fifth_step_ablates_a_step_of_the_best_pipeline(tools: Any) -> None:
    h = History(tools)
    h.drafts({})
    best = h.add(_svc(10.0), 0.98)
    run_history = [
        {"iteration": i, "action": "improve", "spec": _svc(10.0), "status": "ok",
         "experiment_id": best}
        for i in range(1, 5)
    ]  # fmt: skip
    proposal = h.propose(run_history)
    assert proposal.action == "ablate" and proposal.parent_id == best
    assert proposal.spec == "SVC(C=10.0, gamma=0.01)"  # StandardScale removed
    assert proposal.expected_effect == "degrade"
    assert "The StandardScale step matters" in proposal.statement


def test_a_plateaued_family_is_left_for_the_runner_up(tools: Any) -> None:
    h = History(tools)
    h.drafts({"LogReg": 0.97})
    top = h.add(_svc(10.0), 0.98)
    for c in (3.0, 30.0, 100.0, 1.0, 300.0):  # five attempts without a gain: a plateau
        h.add(_svc(c), 0.975)
    proposal = h.propose()
    assert proposal.action == "improve"
    assert "LogReg(" in proposal.spec and "SVC" not in proposal.spec
    assert "SVC pipelines plateaued at 0.98 for 5 attempts" in proposal.rationale
    assert "pivoting to the next most promising family, LogReg" in proposal.rationale
    assert proposal.parent_id != top
