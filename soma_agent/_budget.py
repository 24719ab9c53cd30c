"""Token and dollar accounting for LLM planners, with a hard cap.

Prices are US dollars per million tokens (input, output), list prices as published by
Anthropic and OpenAI (checked 2025). A model name matches the longest key it starts with,
so dated snapshots (``claude-sonnet-4-5-20250929``) find their family. A model the table
does not know is priced at the most expensive entry (``CONSERVATIVE``) and the run's
journal says so; a model served by an OpenAI-compatible server on this machine
(``127.0.0.1``/``localhost``) costs nothing.

The cap is hard: before every request the planner asks :meth:`UsageMeter.reserve` whether
the worst case (the prompt's estimated tokens plus ``max_tokens`` of output) still fits in
the budget; if not, the request is not sent and the run stops.

>>> price_for("claude-sonnet-4-5-20250929").input_per_mtok
3.0
>>> meter = UsageMeter(budget_usd=0.01, price=price_for("gpt-4o-mini"))
>>> round(meter.add(1000, 500), 6)
0.00045
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from soma.errors import SomaError

__all__ = [
    "CONSERVATIVE",
    "PRICES",
    "BudgetExceededError",
    "ModelPrice",
    "UsageMeter",
    "estimate_tokens",
    "price_for",
]


@dataclass(frozen=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float
    known: bool = True
    note: str = ""

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


PRICES: dict[str, ModelPrice] = {
    # Anthropic
    "claude-opus-4-5": ModelPrice(5.0, 25.0),
    "claude-opus-4-1": ModelPrice(15.0, 75.0),
    "claude-opus-4": ModelPrice(15.0, 75.0),
    "claude-sonnet-4": ModelPrice(3.0, 15.0),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
    "claude-3-7-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-haiku": ModelPrice(0.8, 4.0),
    "claude-3-opus": ModelPrice(15.0, 75.0),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
    # OpenAI
    "gpt-5": ModelPrice(1.25, 10.0),
    "gpt-5-mini": ModelPrice(0.25, 2.0),
    "gpt-5-nano": ModelPrice(0.05, 0.4),
    "gpt-4.1": ModelPrice(2.0, 8.0),
    "gpt-4.1-mini": ModelPrice(0.4, 1.6),
    "gpt-4.1-nano": ModelPrice(0.1, 0.4),
    "gpt-4o": ModelPrice(2.5, 10.0),
    "gpt-4o-mini": ModelPrice(0.15, 0.6),
    "o3": ModelPrice(2.0, 8.0),
    "o3-mini": ModelPrice(1.1, 4.4),
    "o4-mini": ModelPrice(1.1, 4.4),
}

#: Used for a model the table does not know: the most expensive entry, so the cap holds.
CONSERVATIVE = ModelPrice(
    max(p.input_per_mtok for p in PRICES.values()),
    max(p.output_per_mtok for p in PRICES.values()),
    known=False,
)

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")


def price_for(model: str, *, base_url: str | None = None, local_free: bool = False) -> ModelPrice:
    """The price of ``model``; free for a local OpenAI-compatible server when ``local_free``."""
    if local_free and base_url and any(f"//{h}" in base_url for h in _LOCAL_HOSTS):
        return ModelPrice(0.0, 0.0, note=f"served locally by {base_url}: no charge")
    name = model.lower().split("/")[-1]
    matches = [key for key in PRICES if name.startswith(key)]
    if matches:
        return PRICES[max(matches, key=len)]
    return ModelPrice(
        CONSERVATIVE.input_per_mtok,
        CONSERVATIVE.output_per_mtok,
        known=False,
        note=(
            f"model {model!r} is not in the price table; counted at the conservative default "
            f"${CONSERVATIVE.input_per_mtok:g}/${CONSERVATIVE.output_per_mtok:g} per million "
            "input/output tokens"
        ),
    )


class BudgetExceededError(SomaError):
    """The next LLM request could cost more than what is left of the run's dollar budget."""


def estimate_tokens(text: str) -> int:
    """A generous token estimate for a prompt (about 3 characters per token)."""
    return len(text) // 3 + 16


class UsageMeter:
    """Counts tokens and dollars of one run against ``budget_usd``."""

    def __init__(self, budget_usd: float, price: ModelPrice, *, spent_usd: float = 0.0) -> None:
        self.budget_usd = float(budget_usd)
        self.price = price
        self.total_cost_usd = float(spent_usd)
        self.input_tokens = 0
        self.output_tokens = 0

    @property
    def left_usd(self) -> float:
        return self.budget_usd - self.total_cost_usd

    def worst_case(self, prompt_tokens: int, max_output_tokens: int) -> float:
        return self.price.cost(prompt_tokens, max_output_tokens)

    def reserve(self, prompt_tokens: int, max_output_tokens: int) -> None:
        """Raise BudgetExceededError when the worst case of the next request does not fit."""
        worst = self.worst_case(prompt_tokens, max_output_tokens)
        if self.total_cost_usd + worst > self.budget_usd:
            raise BudgetExceededError(
                f"dollar budget reached: spent ${self.total_cost_usd:.4f} of "
                f"${self.budget_usd:.4f}; the next request could cost up to ${worst:.4f}"
            )

    def restore(self, usage_entries: Iterable[Any]) -> None:
        """Count what a run already used, from its journal's ``usage`` entries (a resumed run
        goes on counting tokens and dollars from there, so the cap holds across restarts)."""
        for entry in usage_entries:
            p = getattr(entry, "payload", entry) or {}
            self.input_tokens += int(p.get("input_tokens") or 0)
            self.output_tokens += int(p.get("output_tokens") or 0)
            total = p.get("total_cost_usd")
            if isinstance(total, int | float):
                self.total_cost_usd = float(total)

    def add(self, input_tokens: int, output_tokens: int) -> float:
        """Count one response's usage; returns its cost in dollars."""
        self.input_tokens += int(input_tokens)
        self.output_tokens += int(output_tokens)
        cost = self.price.cost(int(input_tokens), int(output_tokens))
        self.total_cost_usd += cost
        return cost
