"""experiment: run a hypothesis through the tool layer, record it, judge it against its parent."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from soma.vocabulary import Direction
from soma_agent._history import experiment_value
from soma_agent._hypothesis import Hypothesis
from soma_agent._losses import LossStore
from soma_agent._paired import paired_test, sample_losses
from soma_agent._verdict import judge, metric_resolution

if TYPE_CHECKING:
    from soma_agent._loop import AgentLoop, LoopState

__all__ = ["ExperimentRunner", "beats", "idempotency_key"]


def beats(value: float | None, other: float | None, direction: str, *, strict: bool = True) -> bool:
    """Whether ``value`` is better than ``other`` in ``direction`` (anything beats None)."""
    if value is None:
        return False
    if other is None:
        return True
    way = Direction(direction)
    return way.better(value, other) or (not strict and value == other)


def idempotency_key(run_id: str, iteration: int) -> str:
    """The key an iteration's experiment is recorded under (a resumed run reuses it)."""
    return f"{run_id}/it{iteration}"


class ExperimentRunner:
    def __init__(self, loop: AgentLoop) -> None:
        self.loop = loop
        self.losses = LossStore(loop.tools.project.state_dir)

    def _keep_losses(self, experiment_id: str, evaluation: Any) -> None:
        # Paired verdicts need them; a prediction that is not one value per sample (or a
        # full disk) only costs the paired test, never the experiment.
        try:
            losses = sample_losses(evaluation.prediction, evaluation.target, self.loop.metric)
            self.losses.put(experiment_id, losses)
        except Exception as exc:
            self.loop.journal("error", {"message": f"per-sample losses not kept: {exc}"})

    def run(self, state: LoopState) -> dict[str, Any]:
        loop = self.loop
        hyp = Hypothesis.model_validate(state["hypothesis"])
        key = idempotency_key(loop.run_id, state["iteration"])
        result = loop._find("experiment_result", hypothesis_id=hyp.id)
        if result is None:
            if loop._find("experiment_started", hypothesis_id=hyp.id) is None:
                loop.journal(
                    "experiment_started",
                    {
                        "hypothesis_id": hyp.id,
                        "idempotency_key": key,
                        "spec": hyp.spec,
                        "action": hyp.action,
                    },
                )
            result = self._execute(hyp, key, state)
            loop.journal("experiment_result", result)
        verdict = loop._find("verdict", hypothesis_id=hyp.id)
        if verdict is None:
            verdict = self._judge(hyp, result, state)
            loop.journal("verdict", verdict)
        return self._update(state, hyp, result, verdict)

    # -- running --------------------------------------------------------------------------------

    def _execute(self, hyp: Hypothesis, key: str, state: LoopState) -> dict[str, Any]:
        from soma_tools import PipelineFailedError, ToolError

        base = {
            "hypothesis_id": hyp.id,
            "experiment_id": None,
            "status": "failed",
            "metrics": {},
            "value": None,
            "duration_s": 0.0,
            "error": None,
            "n_recorded": 0,
            "replayed": False,
        }
        try:
            if hyp.action == "tune" and hyp.n_trials > 1:
                out = self._study(hyp, state)
            else:
                out = self._pipeline(hyp, key)
        except PipelineFailedError as exc:
            exp_id = exc.experiment_id
            if exp_id:
                self._link(exp_id)
            return {
                **base,
                "experiment_id": exp_id,
                "error": _first_lines(str(exc)),
                "n_recorded": 1 if exp_id else 0,
                "node": exc.node,
            }
        except ToolError as exc:
            return {**base, "error": f"not run: {exc}"}
        return {**base, **out}

    def _pipeline(self, hyp: Hypothesis, key: str) -> dict[str, Any]:
        from soma_tools import RunPipelineInput, run_pipeline

        loop = self.loop
        out = run_pipeline(
            loop.tools,
            RunPipelineInput(
                spec=hyp.spec,
                params=hyp.params,
                research_line=hyp.line or loop.line,
                hypothesis=hyp.statement,
                parent_id=hyp.parent_id,
                action=hyp.action,
                tags=["agent", loop.run_id, f"{loop.run_id}:{hyp.id}"],
                seed=loop.settings.seed,
                idempotency_key=key,
                origin="agent",
                strategy=hyp.strategy,
            ),
            on_evaluation=self._keep_losses,
        )
        self._link(out.experiment_id)
        return {
            "experiment_id": out.experiment_id,
            "status": "ok",
            "metrics": dict(out.metrics),
            "value": out.value,
            "duration_s": round(out.duration_s, 4),
            "n_recorded": 1,
            "replayed": out.replayed,
            "pipeline": out.pipeline,
        }

    def _study(self, hyp: Hypothesis, state: LoopState) -> dict[str, Any]:
        from soma_tools import RunStudyInput, run_study

        loop = self.loop
        left = max(1, loop.settings.max_experiments - state["n_experiments"])
        wanted = min(hyp.n_trials, left)
        # The study's name is fixed per iteration: a run killed during the study finds the
        # trials it already recorded under it, runs only the rest, and counts them all once.
        name = f"{loop.run_id}-it{state['iteration']}"
        done = len(self._trials(name))
        duration = 0.0
        if done < wanted:
            out = run_study(
                loop.tools,
                RunStudyInput(
                    spec=hyp.spec,
                    params=hyp.params,
                    n_trials=wanted - done,
                    research_line=hyp.line or loop.line,
                    seed=loop.settings.seed,
                    name=name,
                ),
            )
            duration = out.duration_s
        trials = self._trials(name)
        for e in trials:
            self._link(e.id)
        sign = Direction(loop.direction).sign
        scored = [
            (e, v)
            for e in trials
            if e.status == "ok" and (v := experiment_value(e, loop.metric)) is not None
        ]
        best = max(scored, key=lambda ev: sign * ev[1]) if scored else None
        return {
            "experiment_id": best[0].id if best else None,
            "status": "ok" if best else "failed",
            "metrics": dict(best[0].metrics) if best else {},
            "value": best[1] if best else None,
            "duration_s": round(duration, 4),
            "n_recorded": len(trials),
            "study": name,
            "trial_ids": [e.id for e in trials],
            "error": None if best else f"no trial of study {name} succeeded",
        }

    def _trials(self, study: str) -> list[Any]:
        hits = self.loop.kb.query(tags=[f"study:{study}"], k=10_000)
        return sorted((h.experiment for h in hits), key=lambda e: (e.started, e.id))

    def _link(self, experiment_id: str) -> None:
        # Linking is a convenience (kb.experiments(run_id=...)); the tags hold the run id too.
        with contextlib.suppress(Exception):
            self.loop.kb.update(experiment_id, run_id=self.loop.run_id)

    # -- judging --------------------------------------------------------------------------------

    def _n_valid(self) -> int | None:
        try:
            return len(self.loop.tools.splits().valid[1])
        except Exception:  # no labels, or data that cannot load: no resolution floor
            return None

    def _judge(self, hyp: Hypothesis, result: dict[str, Any], state: LoopState) -> dict[str, Any]:
        loop = self.loop
        kb = loop.kb
        exp_id = result.get("experiment_id")
        ref_id, ref_value = None, None
        if hyp.parent_id:
            try:
                parent = kb.get(hyp.parent_id)
                ref_id, ref_value = parent.id, experiment_value(parent, loop.metric)
            except Exception:
                ref_id = None
        if ref_value is None:
            ref_id, ref_value = state.get("best_experiment_id"), state.get("best_value")
            if ref_id == exp_id:
                ref_id, ref_value = None, None
        repeats = []
        this = kb.get(exp_id) if exp_id else None
        if this is not None:
            trials = set(result.get("trial_ids") or [])
            for e in kb.experiments(line=hyp.line or loop.line, status="ok"):
                if e.id == exp_id or e.id in trials:
                    continue
                value = experiment_value(e, loop.metric)
                if (
                    value is not None
                    and e.pipeline_summary == this.pipeline_summary
                    and e.params == this.params
                ):
                    repeats.append(value)
        paired = None
        mine, theirs = self.losses.get(exp_id), self.losses.get(ref_id)
        if mine is not None and theirs is not None and mine.shape == theirs.shape:
            paired = paired_test(mine, theirs)
        v = judge(
            result.get("value"),
            ref_value,
            loop.direction,
            expected=hyp.expected_effect,
            status=result.get("status", "failed"),
            error=result.get("error"),
            reference_id=ref_id,
            paired=paired,
            repeat_values=repeats,
            resolution=metric_resolution(loop.metric, self._n_valid()),
        )
        if exp_id:
            from soma_tools import RecordExperimentInput, record_experiment

            try:
                record_experiment(
                    loop.tools,
                    # The verdict only: notes would change the experiment's searchable
                    # text and cost a second embedding per experiment; the reason, with
                    # its test, is in the journal and the run's report.
                    RecordExperimentInput(id=exp_id, verdict=v.verdict, origin="agent"),
                )
            except Exception as exc:  # the verdict is journaled even if the KB refuses it
                loop.journal("error", {"message": f"could not record the verdict: {exc}"})
        return {
            "hypothesis_id": hyp.id,
            "experiment_id": exp_id,
            "verdict": v.verdict,
            "reason": v.reason,
            "reference_id": ref_id,
            "delta": v.delta,
            "threshold": v.threshold,
            "test": v.test,
        }

    def _update(
        self, state: LoopState, hyp: Hypothesis, result: dict[str, Any], verdict: dict[str, Any]
    ) -> dict[str, Any]:
        loop = self.loop
        value = result.get("value") if result.get("status") == "ok" else None
        update: dict[str, Any] = {
            "n_experiments": state["n_experiments"] + int(result.get("n_recorded") or 0),
            "no_improve": state["no_improve"] + 1,
        }
        if beats(value, state.get("best_value"), loop.direction):
            update.update(
                best_value=value, best_experiment_id=result.get("experiment_id"), no_improve=0
            )
        entry = {
            "iteration": state["iteration"],
            "hypothesis_id": hyp.id,
            "statement": hyp.statement,
            "action": hyp.action,
            "source": hyp.source,
            "spec": hyp.spec,
            "params": hyp.params,
            "parent_id": hyp.parent_id,
            "experiment_id": result.get("experiment_id"),
            "status": result.get("status"),
            "value": value,
            "error": result.get("error"),
            "verdict": verdict.get("verdict"),
            "n_recorded": int(result.get("n_recorded") or 0),
        }
        update["history"] = [*state["history"], entry]
        return update


def _first_lines(text: str, n: int = 6) -> str:
    return "\n".join(text.splitlines()[:n])[:1500]
