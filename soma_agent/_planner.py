"""The planner interface and ``make_planner("builtin" | "anthropic:MODEL" | ...)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from soma.errors import SomaError, ValidationError

if TYPE_CHECKING:
    from soma_agent._budget import UsageMeter
    from soma_agent._hypothesis import Observation, ProposedHypothesis

__all__ = [
    "PLANNER_HELP",
    "Planner",
    "PlannerContext",
    "PlannerError",
    "make_planner",
    "parse_planner",
]

PLANNER_HELP = (
    "builtin (offline, default), anthropic:MODEL, openai:MODEL, or "
    "openai-compatible:URL#MODEL (e.g. openai-compatible:http://127.0.0.1:11434/v1#llama3.1)"
)


class PlannerError(SomaError):
    """The planner cannot propose anything (e.g. the project has no model filter)."""


@dataclass
class PlannerContext:
    """What a planner may use besides the observation.

    ``tools`` is the tool layer's ``ToolContext`` (project, knowledge base, cache);
    ``run_history`` lists this run's iterations so far (dicts with hypothesis, action,
    experiment_id, status, value, error, verdict); ``journal(kind, payload)`` writes an
    entry of this run; ``meter`` counts LLM spending (None for the built-in planner).
    """

    tools: Any
    run_id: str
    iteration: int
    seed: int
    line: str
    metric: str
    direction: str
    max_experiments: int
    n_experiments: int
    run_history: list[dict[str, Any]] = field(default_factory=list)
    journal: Callable[[str, dict[str, Any]], Any] = lambda kind, payload: None
    meter: UsageMeter | None = None

    @property
    def experiments_left(self) -> int:
        return max(0, self.max_experiments - self.n_experiments)


class Planner(Protocol):
    """Proposes the next hypothesis. ``name`` is what ``--planner`` said; ``source`` goes
    into each hypothesis (builtin, anthropic, openai, openai-compatible)."""

    name: str
    source: str

    def propose(self, observation: Observation, ctx: PlannerContext) -> ProposedHypothesis: ...


def parse_planner(spec: str) -> tuple[str, str | None, str | None]:
    """``"openai-compatible:http://h/v1#m"`` -> ``("openai-compatible", "m", "http://h/v1")``."""
    spec = (spec or "").strip()
    if spec in ("", "builtin"):
        return "builtin", None, None
    kind, sep, rest = spec.partition(":")
    if not sep or not rest.strip():
        raise ValidationError("planner", f"expected {PLANNER_HELP}; got {spec!r}")
    if kind in ("anthropic", "openai"):
        return kind, rest.strip(), None
    if kind == "openai-compatible":
        url, hash_, model = rest.rpartition("#")
        if not hash_ or not url.startswith(("http://", "https://")) or not model.strip():
            raise ValidationError(
                "planner",
                "openai-compatible needs URL#MODEL, e.g. "
                f"openai-compatible:http://127.0.0.1:11434/v1#llama3.1; got {spec!r}",
            )
        return kind, model.strip(), url
    raise ValidationError("planner", f"unknown planner kind {kind!r}; expected {PLANNER_HELP}")


def make_planner(spec: str = "builtin", **options: Any) -> Planner:
    """Build the planner named by ``--planner``.

    LLM planners need their API key in the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY;
    an OpenAI-compatible server takes OPENAI_API_KEY if set); a missing key raises
    ValidationError naming the variable. ``options`` go to the planner's constructor
    (e.g. ``max_tokens``, ``max_retries``, ``max_tool_calls``).
    """
    kind, model, url = parse_planner(spec)
    if kind == "builtin":
        from soma_agent._planner_builtin import BuiltinPlanner

        return BuiltinPlanner(**options)
    from soma_agent._planner_llm import AnthropicPlanner, OpenAIPlanner

    assert model is not None
    if kind == "anthropic":
        return AnthropicPlanner(model, **options)
    return OpenAIPlanner(model, base_url=url, compatible=kind == "openai-compatible", **options)
