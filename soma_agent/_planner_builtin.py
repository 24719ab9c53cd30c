"""The built-in planner: an offline tree search over pipelines and params, guided by the KB.

Each call looks at the research line's history in the knowledge base and picks, in order:

1. **debug** — the run's last experiment failed: drop the failing step (or reset the
   failing model's params to their defaults) and try again;
2. **draft** — while the draft quota lasts (half the experiment budget, at most one per
   model), a new pipeline family ``[scaler] >> model`` with default params, one model at a
   time, skipping families the line already has;
3. **ablate / restructure** — every fifth step after the drafts, change the best
   pipeline's structure: remove a step (does it matter?), add a reducer, or swap the scaler;
4. **improve** — tune the most promising family: the best one, unless it stalled for
   ``plateau`` attempts, then **pivot** to the next. Params come from a local perturbation
   of the family's best while it has fewer than four results, then from Optuna's TPE
   (ask/tell) over every result of that family in the knowledge base.

Everything random draws from ``random.Random(seed, iteration)``, so a run is deterministic
for a seed.
"""

from __future__ import annotations

from typing import Any

from soma_agent._history import Trial
from soma_agent._hypothesis import Observation, ProposedHypothesis
from soma_agent._pipelines import (
    Candidate,
    apply_flat,
    default_step,
    distributions,
    flat_params,
)
from soma_agent._planner import PlannerContext, PlannerError
from soma_agent._search_state import (
    SearchState,
    describe_change,
    failing_step,
    fmt,
    perturb_value,
    structure_moves,
)
from soma_agent._tpe import FamilySpace, tpe_propose

__all__ = ["BuiltinPlanner", "PlannerError"]


class BuiltinPlanner:
    """Offline planner; ``plateau`` = attempts without gain before a family is left."""

    name = "builtin"
    source = "builtin"

    def __init__(
        self,
        *,
        plateau: int = 5,
        structure_every: int = 5,
        local_until: int = 4,
        contenders: int = 2,
    ) -> None:
        for name, value in (
            ("plateau", plateau),
            ("structure_every", structure_every),
            ("local_until", local_until),
            ("contenders", contenders),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        self.plateau = plateau
        self.contenders = contenders
        self.structure_every = structure_every
        self.local_until = local_until

    # -- entry point --------------------------------------------------------------------

    def propose(self, observation: Observation, ctx: PlannerContext) -> ProposedHypothesis:
        state = SearchState.build(observation, ctx)
        for strategy in (self._debug, self._draft, self._structural, self._improve):
            proposal = strategy(state)
            if proposal is not None:
                return proposal
        raise PlannerError("every pipeline the built-in planner can build was tried")

    # -- strategies ---------------------------------------------------------------------

    def _debug(self, s: SearchState) -> ProposedHypothesis | None:
        last = s.ctx.run_history[-1] if s.ctx.run_history else None
        if not last or last.get("status") in ("ok", None) or last.get("vetoed"):
            return None
        if last.get("action") == "debug":
            return None  # do not chain fixes of fixes; move on
        failed = s.candidate_of(last)
        if failed is None:
            return None
        error = str(last.get("error") or "")
        index = failing_step(failed, error)
        if (
            index is not None
            and s.roles.get(failed.steps[index].name) != "model"
            and len(failed.steps) > 1
        ):
            fixed, change = failed.without(index), f"dropping {failed.steps[index].name}"
        else:
            index = index if index is not None else len(failed.steps) - 1
            step = failed.steps[index]
            fixed = failed.replaced(index, default_step(step.name, s.classes[step.name]))
            change = f"resetting {step.name} to its default parameters"
        if s.tried(fixed):
            return None
        short = error.splitlines()[0][:160] if error else "an error"
        return ProposedHypothesis(
            statement=f"The failure of {last.get('experiment_id') or 'the last experiment'} "
            f"({short}) is fixed by {change}.",
            rationale=f"{failed.spec()} failed; the error points at step "
            f"{failed.steps[index].name if index < len(failed.steps) else '?'}.",
            spec=fixed.spec(),
            action="debug",
            expected_effect="improve",
            parent_id=s.best_id,
        )

    def _draft(self, s: SearchState) -> ProposedHypothesis | None:
        quota = min(len(s.models), max(2, s.ctx.max_experiments // 2))
        drafted = sum(1 for h in s.ctx.run_history if h.get("action") == "draft")
        if drafted >= quota:
            return None
        known = {t.candidate.structure for t in s.trials if t.candidate is not None}
        for model in s.models:
            steps = [default_step(s.scaler, s.classes[s.scaler])] if s.scaler else []
            candidate = Candidate((*steps, default_step(model, s.classes[model])))
            if candidate.structure in known or s.tried(candidate):
                continue
            scaled = f"on {s.scaler}-scaled features " if s.scaler else ""
            return ProposedHypothesis(
                statement=f"{model} {scaled}with its default settings is a competitive "
                f"pipeline for {s.ctx.metric}.",
                rationale=f"Drafting diverse pipeline families before tuning ({drafted + 1} of "
                f"{quota}); the line has no result for {candidate.structure_text} yet.",
                spec=candidate.spec(),
                action="draft",
                expected_effect="no_change" if s.best_id else "improve",
                parent_id=s.best_id,
            )
        return None

    def _structural(self, s: SearchState) -> ProposedHypothesis | None:
        drafted = sum(1 for h in s.ctx.run_history if h.get("action") == "draft")
        after = len(s.ctx.run_history) - drafted
        if after <= 0 or after % self.structure_every != self.structure_every - 1:
            return None
        best = s.best_trial
        if best is None or best.candidate is None:
            return None
        options = structure_moves(best.candidate, s)
        options = [o for o in options if o[0].structure not in s.structures and not s.tried(o[0])]
        if not options:
            return None
        candidate, action, statement, expected = options[0]
        return ProposedHypothesis(
            statement=statement.format(v=fmt(best.value), exp=best.experiment_id, m=s.ctx.metric),
            rationale=f"Testing the structure of the best pipeline {best.candidate.spec()} "
            f"({best.experiment_id}) instead of only its parameters.",
            spec=candidate.spec(),
            action=action,
            expected_effect=expected,
            parent_id=best.experiment_id,
        )

    def _improve(self, s: SearchState) -> ProposedHypothesis | None:
        ranked = s.ranked_families()
        if not ranked:
            return None
        # Only the best families (``contenders``) compete for the budget: a pivot goes to the
        # runner-up, and when all stalled the least explored of them goes on (TPE there also
        # varies scaler and reducer) instead of spending on families that are clearly worse.
        contenders = ranked[: self.contenders]
        fresh = [f for f in contenders if s.stall(f) < self.plateau]
        if fresh:
            focus = fresh[0]
        else:  # every contender stalled: give the least explored one more budget
            focus = min(contenders, key=lambda f: (len(s.family_trials(f)), contenders.index(f)))
        pivot_from = None
        if focus != ranked[0]:
            pivot_from = ranked[0]
        best = s.family_best(focus)
        assert best is not None and best.candidate is not None
        members = s.family_trials(focus)
        n_ok = sum(1 for t in members if t.ok)
        proposal, how = None, ""
        for attempt in range(8):
            if n_ok < self.local_until:
                proposal = self._perturb(best.candidate, s, attempt)
                how = "a local step around the family's best"
            else:
                proposal = self._tpe(focus, members, s, attempt)
                how = f"TPE over the {n_ok} results of {focus} pipelines in the knowledge base"
            if proposal is not None and not s.tried(proposal):
                break
            proposal = None
        if proposal is None:
            return None
        changes = describe_change(best.candidate, proposal)
        statement = (
            f"Changing {changes} improves on the best {focus} pipeline "
            f"({s.ctx.metric} {fmt(best.value)}, {best.experiment_id})."
        )
        rationale = f"Suggested by {how}."
        if pivot_from is not None:
            top = s.family_best(pivot_from)
            rationale = (
                f"{pivot_from} pipelines plateaued at {fmt(top.value if top else None)} for "
                f"{s.stall(pivot_from)} attempts; pivoting to the next most promising family, "
                f"{focus}. " + rationale
            )
        return ProposedHypothesis(
            statement=statement,
            rationale=rationale,
            spec=proposal.spec(),
            action="improve",
            expected_effect="improve",
            parent_id=best.experiment_id,
        )

    # -- param proposals ------------------------------------------------------------------

    def _perturb(self, base: Candidate, s: SearchState, attempt: int) -> Candidate:
        """Change one or two things of the family's best: a param, or the scaler."""
        rng = s.rng
        dists = distributions(base, s.classes)
        current = flat_params(base)
        keys = sorted(dists)
        swap_scaler = "<scaler>" if len(s.scalers) > 1 else None
        pool = keys + ([swap_scaler] if swap_scaler else [])
        if not pool:
            return base
        n_change = min(len(pool), 1 + rng.randrange(2) + attempt // 3)
        chosen = rng.sample(pool, n_change)
        new: dict[str, Any] = {}
        for key in chosen:
            if key != swap_scaler:
                new[key] = perturb_value(dists[key], current.get(key), rng, scale=1.0 + attempt / 4)
        out = apply_flat(base, new)
        if swap_scaler in chosen:
            index = next(
                (i for i, st in enumerate(out.steps) if s.roles.get(st.name) == "scaler"), None
            )
            others = [n for n in s.scalers if index is None or n != out.steps[index].name]
            step = default_step(rng.choice(others), s.classes[others[0]])
            step = default_step(step.name, s.classes[step.name])
            out = out.inserted(0, step) if index is None else out.replaced(index, step)
        return out

    def _tpe(self, model: str, members: list[Trial], s: SearchState, attempt: int) -> Candidate:
        space = FamilySpace(model, s.scalers, s.reducers, s.classes)
        history = [(t.candidate, t.value if t.ok else None) for t in members if t.candidate]
        seed = s.rng.randrange(2**31)
        return tpe_propose(space, history, s.ctx.direction, seed, draws=attempt + 1)
