"""PopulationBased: today's PBT (``soma.pbt``) as the strategy that fits a node.

The node's rows are split once (seeded) into training and validation rows
(``valid_fraction``); a population of ``population_size`` copies of the filter trains
``steps`` steps per generation for ``generations``, scored on the validation rows by
``metric``; between generations the exploit rule (truncation(fraction) or a binary
tournament) makes losers copy the state and hyperparameters of winners and the explore
rule moves them (perturb(factors) or resample). The fitted state is the best member's;
``results[node]`` keeps the whole PBTResult (lineage, schedule). A member that failed in
any generation makes the fit fail with its error: nothing is scored minus infinity.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import Field

from soma.training._options import Exploit, Explore, Perturb, Resample, Truncation, named
from soma.training._protocol import require
from soma.training._shards import rows, single_input, take
from soma.training._strategy import FitCall, NodeStrategy, TrainingError

__all__ = ["PopulationBased"]


class PopulationBased(NodeStrategy):
    """Population-based training of a node that follows the step protocol
    (``init_state`` and ``partial_fit``; a ``soma.pbt.IterativeFilter`` or a
    ``soma.training.DistributedFilter``)."""

    kind: Literal["population_based"] = "population_based"
    population_size: int = Field(ge=2)
    generations: int = Field(ge=1)
    steps: int = Field(default=1, ge=1)
    exploit: Exploit = Truncation()
    explore: Explore = Perturb()
    metric: str = "mse"
    valid_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 0
    workers: int = Field(default=1, ge=1)

    _results: dict[str, Any] = pydantic.PrivateAttr(default_factory=dict)

    @pydantic.field_validator("exploit", "explore", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return named(value)

    @property
    def results(self) -> dict[str, Any]:
        """node -> the PBTResult of its last fit."""
        return self._results

    def where(self) -> str:
        return f"population of {self.population_size} on {self.workers} process(es)"

    def fit(self, call: FitCall) -> Any:
        if not self.trains(call.node):
            return call.run()  # not one of ``nodes``: Local, as the plan views show
        from soma.pbt import PBT

        label = "PopulationBased"
        flt = call.filter
        require(flt, call.node, label, ("init_state", "partial_fit"))
        x = single_input(call, label)
        n = rows(x, "x")
        n_valid = round(n * self.valid_fraction)
        if n_valid < 1 or n - n_valid < 1:
            raise TrainingError(
                f"PopulationBased(valid_fraction={self.valid_fraction}): node {call.node!r} has "
                f"{n} rows, too few for both training and validation rows"
            )
        order = np.random.default_rng(self.seed).permutation(n)
        train, valid = np.sort(order[n_valid:]), np.sort(order[:n_valid])
        data = (take(x, train), take(call.y, train), take(x, valid), take(call.y, valid))
        explore = self.explore
        pbt = PBT(
            flt,
            data=data,
            metric=self.metric,
            population=self.population_size,
            rounds=self.generations,
            steps=self.steps,
            fraction=self.exploit.fraction if isinstance(self.exploit, Truncation) else 0.25,
            exploit=self.exploit.kind,
            resample_probability=1.0 if isinstance(explore, Resample) else 0.0,
            perturb_factors=explore.factors if isinstance(explore, Perturb) else (0.8, 1.2),
            seed=self.seed,
            workers=self.workers,
        )
        result = pbt.run()
        failed = [r for r in result.rounds if r.failed]
        if failed:
            errors = "; ".join(f"member {m.id}: {m.error}" for m in result.population if m.error)
            raise TrainingError(
                f"PopulationBased: {failed[0].failed} member(s) of node {call.node!r} failed in "
                f"generation {failed[0].round}" + (f" ({errors})" if errors else "")
            )
        best = result.population[0]
        if best.score is None or best.state is None:
            raise TrainingError(f"PopulationBased: no member of node {call.node!r} has a score")
        self._results[call.node] = result
        return best.state
