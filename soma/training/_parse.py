"""One typed union of the strategies, and parsing from data (JSON, dicts, MCP arguments)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pydantic
from pydantic import Field

from soma.errors import ValidationError
from soma.training._data_parallel import DataParallel
from soma.training._federated import Federated
from soma.training._model_parallel import ModelParallel
from soma.training._population import PopulationBased
from soma.training._strategy import Local, TrainingStrategy

__all__ = ["Strategy", "parse_strategy"]

#: Any built-in strategy, by its ``kind`` (a pydantic field type: ``strategy: Strategy``).
Strategy = Annotated[
    Local | DataParallel | ModelParallel | Federated | PopulationBased,
    Field(discriminator="kind"),
]
_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(Strategy)
_KINDS = ("local", "data_parallel", "model_parallel", "federated", "population_based")


def parse_strategy(value: Any) -> TrainingStrategy:
    """A strategy from an instance, ``model_dump()`` data, its JSON text, or a kind name
    without arguments (``"local"``). ValidationError naming the field otherwise."""
    if isinstance(value, TrainingStrategy):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError("strategy", f"not valid JSON: {exc}") from None
        else:
            value = {"kind": text}
    if not isinstance(value, dict):
        raise ValidationError(
            "strategy", f"expected a strategy, a dict with a 'kind' or JSON, got {value!r}"
        )
    if value.get("kind") not in _KINDS:
        raise ValidationError(
            "strategy.kind", f"expected one of {', '.join(_KINDS)}, got {value.get('kind')!r}"
        )
    classes = dict(
        zip(_KINDS, (Local, DataParallel, ModelParallel, Federated, PopulationBased), strict=True)
    )
    fields = {k: v for k, v in value.items() if k != "kind"}
    return classes[value["kind"]](**fields)  # its __init__ names the bad field
