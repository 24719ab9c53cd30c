"""The typed options of the strategies: aggregations, client selections, communication,
exploit and explore rules. Each is a small frozen pydantic model with a ``kind``; a bare
string names one without arguments (``aggregation="fedavg"``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from soma.training._strategy import soma_validation_error

__all__ = [
    "AllClients",
    "BinaryTournament",
    "FedAvg",
    "FedProx",
    "Perturb",
    "Pipeline",
    "RandomClients",
    "Resample",
    "TaggedClients",
    "Truncation",
    "by_tags",
    "fedavg",
    "fedprox",
    "perturb",
    "pipeline",
    "random",
    "truncation",
]


class _Option(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise soma_validation_error(type(self).__name__, exc) from None

    def __repr__(self) -> str:
        args = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in type(self).model_fields if name != "kind"
        )
        return f"{self.kind}({args})"  # type: ignore[attr-defined]


# -- federated aggregation ----------------------------------------------------------------


class FedAvg(_Option):
    """Average the clients' states, weighted by their sample counts."""

    kind: Literal["fedavg"] = "fedavg"


class FedProx(_Option):
    """FedAvg whose clients minimise loss + mu/2 * ||w - w_global||^2 (needs the filter's
    ``partial_fit_prox``)."""

    kind: Literal["fedprox"] = "fedprox"
    mu: float = Field(gt=0.0)


Aggregation = Annotated[FedAvg | FedProx, Field(discriminator="kind")]

# -- client selection ---------------------------------------------------------------------


class AllClients(_Option):
    """Every client takes part in every round."""

    kind: Literal["all"] = "all"


class RandomClients(_Option):
    """A random ``fraction`` of the clients per round (at least one), seeded."""

    kind: Literal["random"] = "random"
    fraction: float = Field(gt=0.0, le=1.0)
    seed: int = 0


class TaggedClients(_Option):
    """The clients holding any of ``tags`` (``Federated.client_tags``)."""

    kind: Literal["by_tags"] = "by_tags"
    tags: tuple[str, ...] = Field(min_length=1)


Selection = Annotated[AllClients | RandomClients | TaggedClients, Field(discriminator="kind")]

# -- model-parallel communication ---------------------------------------------------------


class Pipeline(_Option):
    """Split forward inputs into micro-batches of ``micro_batch`` rows, pipelined through
    the stages (None: one batch)."""

    kind: Literal["pipeline"] = "pipeline"
    micro_batch: int | None = Field(default=None, ge=1)


# -- population-based exploit / explore ---------------------------------------------------


class Truncation(_Option):
    """The bottom ``fraction`` copies a member of the top ``fraction``."""

    kind: Literal["truncation"] = "truncation"
    fraction: float = Field(default=0.25, gt=0.0, le=0.5)


class BinaryTournament(_Option):
    """Each member meets a random other one; the worse copies the better."""

    kind: Literal["binary_tournament"] = "binary_tournament"


Exploit = Annotated[Truncation | BinaryTournament, Field(discriminator="kind")]


class Perturb(_Option):
    """Multiply each hyperparameter by one of ``factors`` (kept inside its bounds)."""

    kind: Literal["perturb"] = "perturb"
    factors: tuple[Annotated[float, Field(gt=0.0)], ...] = Field(default=(0.8, 1.2), min_length=1)


class Resample(_Option):
    """Draw each hyperparameter afresh from its search space."""

    kind: Literal["resample"] = "resample"


Explore = Annotated[Perturb | Resample, Field(discriminator="kind")]


def named(value: Any) -> Any:
    """``"fedavg"`` -> ``{"kind": "fedavg"}``: a bare string names an option."""
    if isinstance(value, str):
        return {"kind": value}
    return value


# -- constructors, as the issue writes them -----------------------------------------------


def fedavg() -> FedAvg:
    return FedAvg()


def fedprox(mu: float) -> FedProx:
    return FedProx(mu=mu)


def random(fraction: float, seed: int = 0) -> RandomClients:
    return RandomClients(fraction=fraction, seed=seed)


def by_tags(*tags: str) -> TaggedClients:
    return TaggedClients(tags=tags)


def pipeline(micro_batch: int | None = None) -> Pipeline:
    return Pipeline(micro_batch=micro_batch)


def truncation(fraction: float = 0.25) -> Truncation:
    return Truncation(fraction=fraction)


def perturb(*factors: float) -> Perturb:
    return Perturb(factors=factors or (0.8, 1.2))
