"""The research loop on LangGraph: observe → hypothesize → gate → experiment → conclude.

Each node is a method of :class:`AgentLoop`; the graph checkpoints its state after every
node in SQLite (``.soma/agent_checkpoints.sqlite``, thread = run id). Side effects are made
idempotent through the knowledge base: a hypothesis is looked up in the journal before a new
one is proposed, an experiment runs under the key ``<run_id>/it<iteration>`` (the tool layer
answers a repeated key with the first result), and a result already journaled is reused — so
a run killed at any point and resumed records every experiment exactly once.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypedDict

from soma_agent._budget import BudgetExceededError
from soma_agent._command_inbox import Controls
from soma_agent._experiment import ExperimentRunner, beats
from soma_agent._hypothesis import Hypothesis, Observation, ProposedHypothesis
from soma_agent._observe import build_observation
from soma_agent._planner import Planner, PlannerContext, PlannerError
from soma_agent._settings import AgentSettings

__all__ = ["AgentLoop", "LoopState", "initial_state"]


class LoopState(TypedDict, total=False):
    iteration: int
    n_experiments: int
    best_value: float | None
    best_experiment_id: str | None
    no_improve: int
    history: list[dict[str, Any]]
    observation: dict[str, Any] | None
    hypothesis: dict[str, Any] | None
    gate: str | None
    stop_reason: str | None
    stop_status: str | None
    report_path: str | None


def initial_state() -> LoopState:
    return LoopState(
        iteration=0,
        n_experiments=0,
        best_value=None,
        best_experiment_id=None,
        no_improve=0,
        history=[],
        observation=None,
        hypothesis=None,
        gate=None,
        stop_reason=None,
        stop_status=None,
        report_path=None,
    )


class AgentLoop:
    """The nodes of one run and the graph that connects them."""

    def __init__(
        self,
        tools: Any,
        planner: Planner,
        settings: AgentSettings,
        run_id: str,
        *,
        line: str,
        meter: Any = None,
        on_entry: Any = None,
    ) -> None:
        self.tools = tools
        self.kb = tools.kb
        self.planner = planner
        self.settings = settings
        self.run_id = run_id
        self.line = line
        ln = self.kb.get_line(line)
        self.metric, self.direction = ln.metric, ln.direction
        self.meter = meter
        self.on_entry = on_entry
        self.controls = Controls(self.kb, run_id, poll_interval_s=settings.poll_interval_s)
        self.iteration = 0
        self.experiments = ExperimentRunner(self)
        self._similar_cache: dict[str, Any] = {}

    # -- journal ------------------------------------------------------------------------------

    def journal(self, kind: str, payload: dict[str, Any], iteration: int | None = None) -> int:
        it = self.iteration if iteration is None else iteration
        entry_id = self.kb.journal_append(self.run_id, it, kind, payload)
        if self.on_entry is not None:
            # A display problem must never stop research.
            with contextlib.suppress(Exception):
                self.on_entry({"id": entry_id, "iteration": it, "kind": kind, "payload": payload})
        return entry_id

    def _journal_fn(self) -> Any:
        return lambda kind, payload: self.journal(kind, payload)

    def _find(self, kind: str, **match: Any) -> dict[str, Any] | None:
        """The latest journal payload of ``kind`` whose fields equal ``match``."""
        for entry in reversed(self.kb.journal(self.run_id, kinds=kind)):
            if all(entry.payload.get(k) == v for k, v in match.items()):
                return dict(entry.payload)
        return None

    def _controls(self, **kwargs: Any) -> dict[str, Any]:
        st = self.controls.poll(self._journal_fn(), **kwargs)
        if st.stop_reason is not None:
            return {"stop_reason": st.stop_reason, "stop_status": "stopped"}
        return {}

    # -- nodes --------------------------------------------------------------------------------

    def observe(self, state: LoopState) -> dict[str, Any]:
        self.iteration = state["iteration"] + 1
        update: dict[str, Any] = {"iteration": self.iteration, "hypothesis": None, "gate": None}
        stop = self._controls()
        if stop:
            return {**update, **stop}
        obs = build_observation(
            self.tools,
            goal=self.settings.goal,
            line=self.line,
            iteration=self.iteration,
            n_experiments=state["n_experiments"],
            max_experiments=self.settings.max_experiments,
            pending=[_pending(h) for h in self.controls.state.injected],
            no_improvement_for=state["no_improve"],
            similar_cache=self._similar_cache,
        )
        self.journal(
            "observation",
            {
                "summary": obs.summary(),
                "best_value": obs.best_value,
                "best_experiment_id": obs.best_experiment_id,
                "n_experiments": state["n_experiments"],
                "trend": next((ln.trend for ln in obs.lines if ln.name == self.line), None),
                "recent_failures": len(obs.failures),
                "similar": [s.id for s in obs.similar],
            },
        )
        update["observation"] = obs.model_dump(mode="json")
        if state.get("best_value") is None and obs.best_value is not None:
            update["best_value"], update["best_experiment_id"] = (
                obs.best_value,
                obs.best_experiment_id,
            )
        return update

    def hypothesize(self, state: LoopState) -> dict[str, Any]:
        self.iteration = state["iteration"]
        hid = f"h{self.iteration}"
        earlier = self._find("hypothesis", id=hid)
        if earlier is not None:  # resumed after a crash: never propose twice for one iteration
            return {"hypothesis": earlier}
        stop = self._controls()
        if stop:
            return stop
        obs = Observation.model_validate(state["observation"])
        hypothesis = self._injected(hid)
        if hypothesis is None:
            ctx = PlannerContext(
                tools=self.tools,
                run_id=self.run_id,
                iteration=self.iteration,
                seed=self.settings.seed,
                line=self.line,
                metric=self.metric,
                direction=self.direction,
                max_experiments=self.settings.max_experiments,
                n_experiments=state["n_experiments"],
                run_history=list(state["history"]),
                journal=self._journal_fn(),
                meter=self.meter,
            )
            try:
                proposal = self.planner.propose(obs, ctx)
            except BudgetExceededError as exc:
                return {"stop_reason": str(exc), "stop_status": "completed"}
            except PlannerError as exc:
                return {
                    "stop_reason": f"the planner has nothing left to propose: {exc}",
                    "stop_status": "completed" if state["n_experiments"] else "failed",
                }
            source = getattr(self.planner, "last_source", self.planner.source)
            hypothesis = _complete(proposal, hid, self.line, source)
        payload = hypothesis.journal_payload()
        self.journal("hypothesis", payload)
        return {"hypothesis": payload}

    _last_injected_id: int | None = None

    def _injected(self, hid: str) -> Hypothesis | None:
        from soma_agent._planner_llm import check_pipeline

        queue = self.controls.state.injected
        while queue:
            raw = queue.pop(0)
            self._last_injected_id = raw.get("control_id")
            fields = {k: v for k, v in raw.items() if k != "control_id"}
            fields.setdefault("action", "improve" if fields.get("parent_id") else "draft")
            fields.setdefault("rationale", "Injected by a person.")
            try:
                proposal = ProposedHypothesis.model_validate(fields)
                error = check_pipeline(proposal, self.tools)
            except Exception as exc:
                error = str(exc)
            if error:
                self.journal(
                    "error",
                    {
                        "message": f"injected hypothesis rejected: {error}",
                        "control_id": self._last_injected_id,
                    },
                )
                continue
            hypothesis = _complete(proposal, hid, self.line, "human")
            hypothesis.injected_control_id = self._last_injected_id
            return hypothesis
        return None

    def gate(self, state: LoopState) -> dict[str, Any]:
        self.iteration = state["iteration"]
        if state.get("stop_reason"):
            return {"gate": "stopped"}
        hyp = state["hypothesis"] or {}
        hid = hyp.get("id")
        for kind in ("approved", "vetoed"):
            if self._find(kind, hypothesis_id=hid) is not None:
                return {"gate": kind}
        needs_approval = self.settings.approve and hyp.get("source") != "human"
        if not needs_approval:
            stop = self._controls()
            return {"gate": "stopped", **stop} if stop else {"gate": "approved"}
        if self._find("awaiting_approval", hypothesis_id=hid) is None:
            self.journal("awaiting_approval", {"hypothesis_id": hid})
        self.controls.expect_decision()
        st = self.controls.poll(self._journal_fn(), awaiting=hid, block=True)
        if st.stop_reason is not None:
            return {"gate": "stopped", "stop_reason": st.stop_reason, "stop_status": "stopped"}
        return {"gate": st.decision}

    def experiment(self, state: LoopState) -> dict[str, Any]:
        self.iteration = state["iteration"]
        return self.experiments.run(state)

    def record_veto(self, state: LoopState) -> dict[str, Any]:
        hyp = state["hypothesis"] or {}
        entry = {
            "iteration": state["iteration"],
            "hypothesis_id": hyp.get("id"),
            "statement": hyp.get("statement"),
            "action": hyp.get("action"),
            "spec": hyp.get("spec"),
            "params": hyp.get("params"),
            "vetoed": True,
            "status": None,
            "experiment_id": None,
        }
        return {"history": [*state["history"], entry]}

    def conclude(self, state: LoopState) -> dict[str, Any]:
        self.iteration = state["iteration"]
        update: dict[str, Any] = {}
        if state.get("gate") == "vetoed":
            update = self.record_veto(state)
        if not state.get("stop_reason"):
            update.update(self._controls())
        reason, status = self._stop_reason({**state, **update})
        if reason is None:
            self.journal("decision", {"continue": True, "reason": self._progress_text(state)})
            return update
        self.journal("decision", {"continue": False, "reason": reason})
        return {**update, "stop_reason": reason, "stop_status": status}

    def _stop_reason(self, state: dict[str, Any]) -> tuple[str | None, str]:
        s = self.settings
        if state.get("stop_reason"):
            return state["stop_reason"], state.get("stop_status") or "stopped"
        if state["n_experiments"] >= s.max_experiments:
            return (
                f"experiment budget reached ({state['n_experiments']} of {s.max_experiments})",
                "completed",
            )
        if self.meter is not None and self.meter.total_cost_usd >= s.budget_usd:
            return (
                f"dollar budget reached (${self.meter.total_cost_usd:.4f} of ${s.budget_usd:.2f})",
                "completed",
            )
        best = state.get("best_value")
        if (
            s.target is not None
            and best is not None
            and not beats(s.target, best, self.direction, strict=True)
        ):
            return (
                f"target reached: {self.metric} {best:.4g} (target {s.target:g}, "
                f"{state.get('best_experiment_id')})",
                "completed",
            )
        if s.patience is not None and state["no_improve"] >= s.patience:
            return f"plateau: no new best for {state['no_improve']} iterations", "completed"
        if state["iteration"] >= s.iteration_limit:
            return f"iteration limit reached ({s.iteration_limit})", "completed"
        return None, "completed"

    def _progress_text(self, state: LoopState) -> str:
        left = self.settings.max_experiments - state["n_experiments"]
        best = state.get("best_value")
        best_text = (
            "none yet" if best is None else f"{best:.4g} ({state.get('best_experiment_id')})"
        )
        return f"{left} experiment(s) left; best {self.metric} {best_text}"

    def finish(self, state: LoopState) -> dict[str, Any]:
        from soma_agent._run_report import write_run_report

        self.iteration = state["iteration"]
        # Idempotent across a crash between journaling and checkpointing: skip when this
        # session already finished. A run_finished from before the last (re)start, e.g. the
        # "stopped" that Ctrl-C journals, does not count: the resumed run gets its report.
        marks = self.kb.journal(self.run_id, kinds=["run_started", "run_finished"])
        if marks and marks[-1].kind == "run_finished":
            return {"report_path": state.get("report_path")}
        status = state.get("stop_status") or "completed"
        reason = state.get("stop_reason") or "finished"
        path, best = write_run_report(self, state, status, reason)
        self.journal(
            "report",
            {"path": str(path), "best_experiment_id": best[0], "best_value": best[1]},
        )
        self.journal(
            "run_finished",
            {
                "status": status,
                "reason": reason,
                "best_experiment_id": best[0],
                "best_value": best[1],
                "n_experiments": state["n_experiments"],
                "cost_usd": self.meter.total_cost_usd if self.meter is not None else 0.0,
            },
        )
        return {"report_path": str(path)}

    # -- the graph ------------------------------------------------------------------------------

    def build(self, checkpointer: Any) -> Any:
        from langgraph.graph import END, START, StateGraph

        def stopping(state: LoopState) -> bool:
            return bool(state.get("stop_reason"))

        g = StateGraph(LoopState)
        g.add_node("observe", self.observe)
        g.add_node("hypothesize", self.hypothesize)
        g.add_node("gate", self.gate)
        g.add_node("experiment", self.experiment)
        g.add_node("conclude", self.conclude)
        g.add_node("finish", self.finish)
        g.add_edge(START, "observe")
        g.add_conditional_edges(
            "observe",
            lambda s: "finish" if stopping(s) else "hypothesize",
            ["hypothesize", "finish"],
        )
        g.add_conditional_edges(
            "hypothesize", lambda s: "finish" if stopping(s) else "gate", ["gate", "finish"]
        )
        g.add_conditional_edges(
            "gate",
            lambda s: {"approved": "experiment", "vetoed": "conclude"}.get(
                s.get("gate") or "", "finish"
            ),
            ["experiment", "conclude", "finish"],
        )
        g.add_edge("experiment", "conclude")
        g.add_conditional_edges(
            "conclude", lambda s: "finish" if stopping(s) else "observe", ["observe", "finish"]
        )
        g.add_edge("finish", END)
        return g.compile(checkpointer=checkpointer)


def _complete(proposal: ProposedHypothesis, hid: str, line: str, source: str) -> Hypothesis:
    data = proposal.model_dump()
    data["line"] = data.get("line") or line
    return Hypothesis(**data, id=hid, source=source)


def _pending(h: dict[str, Any]) -> dict[str, Any]:
    return {"statement": h.get("statement"), "spec": h.get("spec"), "source": "human"}
