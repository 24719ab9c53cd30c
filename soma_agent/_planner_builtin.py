"""The built-in planner: successive halving over model families, TPE inside each family.

Each call reads the research line's history from the knowledge base (so a second run starts
from everything the first one learnt) and picks, in order:

1. **debug** — the run's last experiment failed: drop the failing step (or reset the
   failing model's params to their defaults) and try again;
2. **allocate** — which model family gets the next experiment, by successive halving
   over the families: every family gets ``probe`` results (its declared defaults, then a
   seeded random point of its space, so a family is never judged on its declared defaults
   alone); then the best half of them (ranked by their best result) get twice as many, the
   best half of those twice as many again, and so on down to one; past that the leader
   keeps the budget until it stops improving beyond noise for ``plateau`` of its results,
   then the runner-up gets it. The order the families are opened in is shuffled by the
   seed, so seeds diversify the opening;
3. **structure** — every ``structure_every`` steps after the opening, a structural
   change of the best pipeline (an ablation first: can a step go?), never a move that
   cannot change the result (a scaler in front of a forest);
4. inside the chosen family, the next point comes from Optuna's TPE (ask/tell), told every
   result of that family already in the knowledge base — the pipeline's structure
   (``[scaler] >> [reducer]``) is part of the family's space. Once a family is promoted past
   the opening, every ``local_every``-th of its proposals is instead a local step around its
   best pipeline (one or two params moved): TPE on a dozen points still explores widely,
   and at small budgets the gains are mostly next to the incumbent. A point already
   measured (the knowledge base knows it) is never proposed again.

Everything random draws from the seed (and the iteration), so a run is deterministic for a
seed.
"""

from __future__ import annotations

import math
import random

from soma_agent._hypothesis import Observation, ProposedHypothesis
from soma_agent._pipelines import Candidate, default_step
from soma_agent._planner import PlannerContext, PlannerError
from soma_agent._search_state import (
    SearchState,
    describe_change,
    failing_step,
    fmt,
    local_step,
    structure_moves,
)
from soma_agent._tpe import FamilySpace, tpe_propose

__all__ = ["BuiltinPlanner", "PlannerError"]

#: Distinct draws asked of TPE before a family's space counts as exhausted.
_DRAWS = 12


class BuiltinPlanner:
    """Offline planner (see the module docstring).

    ``probe``: results every family gets before any is dropped; ``plateau``: results of the
    leading family without a gain beyond noise before the runner-up gets the budget;
    ``structure_every``: steps between structural moves after the opening; ``local_every``:
    a promoted family's every ``local_every``-th proposal is a local step around its best
    (the others come from TPE).
    """

    name = "builtin"
    source = "builtin"

    def __init__(
        self,
        *,
        probe: int = 2,
        plateau: int = 6,
        structure_every: int = 8,
        local_every: int = 2,
    ) -> None:
        for name, value in (
            ("probe", probe),
            ("plateau", plateau),
            ("structure_every", structure_every),
            ("local_every", local_every),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        self.probe = probe
        self.plateau = plateau
        self.structure_every = structure_every
        self.local_every = local_every

    # -- entry point --------------------------------------------------------------------

    def propose(self, observation: Observation, ctx: PlannerContext) -> ProposedHypothesis:
        state = SearchState.build(observation, ctx)
        for strategy in (self._debug, self._structural, self._allocate):
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

    def opening_order(self, s: SearchState) -> list[str]:
        """The model families in the order this seed opens them."""
        order = sorted(s.models)
        random.Random(s.ctx.seed).shuffle(order)
        return order

    def schedule(self, s: SearchState) -> tuple[str, str] | None:
        """The family that gets the next experiment, and why (None: no family left)."""
        order = self.opening_order(s)
        counts = {f: len(s.family_trials(f)) for f in order}
        ranked = s.ranked_families()
        # Families without any success rank last, in opening order.
        ranking = [f for f in ranked if f in counts] + [f for f in order if f not in ranked]
        k = len(ranking)
        rung, survivors, target = 0, k, self.probe
        while True:
            top = ranking[:survivors]
            lacking = [f for f in top if counts[f] < target]
            if lacking:
                focus = min(lacking, key=lambda f: (counts[f], ranking.index(f)))
                if rung == 0:
                    why = (
                        f"opening: every family gets {target} result(s) before any is dropped "
                        f"({focus} has {counts[focus]})"
                    )
                else:
                    why = (
                        f"successive halving, rung {rung}: the best {survivors} of {k} "
                        f"families get {target} results each ({focus} is ranked "
                        f"{ranking.index(focus) + 1}, has {counts[focus]})"
                    )
                return focus, why
            if survivors == 1:
                break
            rung, survivors, target = rung + 1, math.ceil(survivors / 2), target * 2
        # Past the last rung: the leader while it improves beyond noise, then the others.
        for f in ranking[: max(2, min(3, k))]:
            stall = s.stall(f)
            if stall < self.plateau:
                if f == ranking[0]:
                    return f, f"the leading family ({stall} result(s) since its last real gain)"
                lead = ranking[0]
                return f, (
                    f"{lead} pipelines plateaued (no gain beyond noise for {s.stall(lead)} "
                    f"results); pivoting to the next most promising family, {f}"
                )
        contenders = ranking[: max(2, min(3, k))]
        if not contenders:
            return None
        focus = min(contenders, key=lambda f: (counts[f], ranking.index(f)))
        return focus, f"every leading family plateaued; the least explored, {focus}, goes on"

    def _allocate(self, s: SearchState) -> ProposedHypothesis | None:
        picked = self.schedule(s)
        tried: set[str] = set()
        while picked is not None:
            focus, why = picked
            proposal = self._propose_in(focus, why, s)
            if proposal is not None:
                return proposal
            tried.add(focus)
            left = [f for f in self.opening_order(s) if f not in tried]
            picked = (left[0], f"{focus}'s space is exhausted; on to {left[0]}") if left else None
        return None

    def _propose_in(self, focus: str, why: str, s: SearchState) -> ProposedHypothesis | None:
        members = s.family_trials(focus)
        best = s.family_best(focus)
        if not members:
            return self._draft(focus, why, s)
        space = FamilySpace(focus, s.scalers, s.reducers, s.classes, invariant=focus in s.invariant)
        history = [(t.candidate, t.value if t.ok else None) for t in members if t.candidate]
        n_ok = sum(1 for t in members if t.ok)
        # Below ``probe`` results a family is probed at random (seeded): TPE with one point
        # would only wander around the declared defaults, the very thing not to rely on.
        sampler = "random" if len(members) < self.probe or n_ok == 0 else "tpe"
        proposal, how = None, ""
        # A promoted family alternates TPE with a local step around its best: with a dozen
        # results over a conditional space TPE still explores widely, while at small
        # budgets the gains are mostly next to the incumbent.
        if (
            sampler == "tpe"
            and best is not None
            and best.candidate is not None
            and n_ok >= 2 * self.probe
            and len(members) % self.local_every == 0
        ):
            proposal = local_step(best.candidate, s)
            if proposal is not None:
                how = f"a local step around the best {focus} pipeline ({best.experiment_id})"
        if proposal is None:
            seed = s.rng.randrange(2**31)
            for attempt in range(_DRAWS):
                cand = tpe_propose(
                    space, history, s.ctx.direction, seed, draws=attempt + 1, sampler=sampler
                )
                if not s.tried(cand):
                    proposal = cand
                    break
            if proposal is None:
                return None
            how = (
                f"a seeded random point of the {focus} family's space"
                if sampler == "random"
                else f"TPE over the {n_ok} results of {focus} pipelines in the knowledge base"
            )
        if best is None or best.candidate is None:
            return ProposedHypothesis(
                statement=f"{proposal.structure_text} with these settings is a working "
                f"pipeline for {s.ctx.metric}.",
                rationale=f"{why[0].upper()}{why[1:]}; the family has no success yet. "
                f"Suggested by {how}.",
                spec=proposal.spec(),
                action="draft",
                expected_effect="no_change" if s.best_id else "improve",
                parent_id=s.best_id,
            )
        changes = describe_change(best.candidate, proposal)
        return ProposedHypothesis(
            statement=f"Changing {changes} improves on the best {focus} pipeline "
            f"({s.ctx.metric} {fmt(best.value)}, {best.experiment_id}).",
            rationale=f"{why[0].upper()}{why[1:]}. Suggested by {how}.",
            spec=proposal.spec(),
            action="improve",
            expected_effect="improve",
            parent_id=best.experiment_id,
        )

    def _draft(self, model: str, why: str, s: SearchState) -> ProposedHypothesis | None:
        invariant = model in s.invariant
        steps = [default_step(s.scaler, s.classes[s.scaler])] if s.scaler and not invariant else []
        candidate = Candidate((*steps, default_step(model, s.classes[model])))
        if s.tried(candidate):
            return None
        scaled = f"on {s.scaler}-scaled features " if steps else ""
        return ProposedHypothesis(
            statement=f"{model} {scaled}with its declared default settings is competitive "
            f"with the best pipeline so far for {s.ctx.metric}.",
            rationale=f"{why[0].upper()}{why[1:]}; the line has no result for "
            f"{candidate.structure_text} yet"
            + (" (no scaler: the model is scale-invariant)." if invariant else "."),
            spec=candidate.spec(),
            action="draft",
            expected_effect="no_change" if s.best_id else "improve",
            parent_id=s.best_id,
        )

    def _opened(self, s: SearchState) -> bool:
        return all(len(s.family_trials(f)) >= self.probe for f in s.models)

    def _structural(self, s: SearchState) -> ProposedHypothesis | None:
        if not self._opened(s):
            return None
        after = sum(1 for h in s.ctx.run_history if h.get("action") != "draft")
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
