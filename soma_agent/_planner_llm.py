"""LLM planners: a language model proposes each hypothesis through a validated tool call.

Per step the model gets the system prompt (``soma_prompts/agent/system.md``), the
observation (``agent/propose.md``) and the tool layer's schemas: the read-only research
tools, ``write_filter_source`` (it may write new filter code) and ``propose_hypothesis``,
whose input is :class:`ProposedHypothesis`. A proposal is validated twice — the schema, then
the pipeline itself (the spec must parse against the project's filters and the params must
exist on the built graph). An invalid proposal goes back to the model with the validation
error, ``max_invalid`` times; after that, or when the API keeps failing, this step falls back
to the built-in planner and the journal says so (``planner_fallback``).

Every request is priced (``soma_agent._budget``) and refused before it is sent if its worst
case would pass the run's dollar budget.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pydantic

from soma_agent._budget import BudgetExceededError, estimate_tokens, price_for
from soma_agent._hypothesis import Observation, ProposedHypothesis
from soma_agent._llm_clients import AnthropicChat, Chat, OpenAIChat, Reply, ToolCall
from soma_agent._planner import PlannerContext
from soma_agent._planner_builtin import BuiltinPlanner

__all__ = ["PROPOSE_TOOL", "AnthropicPlanner", "LLMPlanner", "OpenAIPlanner", "read_prompt"]

PROPOSE_TOOL = "propose_hypothesis"
#: Tools of the shared tool layer the model may call while planning (never run_pipeline or
#: run_study: experiments go through the loop, so they are journaled and counted).
PLANNING_TOOLS = (
    "list_filters",
    "read_filter_source",
    "write_filter_source",
    "query_knowledge_base",
    "get_trajectory",
    "get_change_points",
    "list_research_lines",
    "promising_lines",
)
_RESULT_CHARS = 6000


def read_prompt(name: str) -> str:
    """A template of ``soma_prompts/agent/`` (package data, read with importlib.resources)."""
    return files("soma_prompts").joinpath("agent", name).read_text(encoding="utf-8")


def _fill(template: str, **values: Any) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", str(value))
    return template


class _Fallback(Exception):
    """This step cannot get a valid proposal from the model."""


class LLMPlanner:
    """Base of the LLM planners; subclasses say how to open a :class:`Chat`."""

    kind = "llm"

    def __init__(
        self,
        model: str,
        *,
        max_tokens: int = 2048,
        max_invalid: int = 2,
        max_turns: int = 8,
        max_retries: int = 3,
        timeout: float = 120.0,
        base_url: str | None = None,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.max_invalid = max_invalid
        self.max_turns = max_turns
        self.max_retries = max_retries
        self.timeout = timeout
        self.base_url = base_url
        self.price = price_for(
            model, base_url=base_url, local_free=self.kind == "openai-compatible"
        )
        self.fallback = BuiltinPlanner()
        self._chat = self._open()  # fails early (missing key) before the run starts

    @property
    def name(self) -> str:
        if self.kind == "openai-compatible":
            return f"{self.kind}:{self.base_url}#{self.model}"
        return f"{self.kind}:{self.model}"

    @property
    def source(self) -> str:
        return self.kind

    def _open(self) -> Chat:
        raise NotImplementedError

    # -- one step -------------------------------------------------------------------------

    def propose(self, observation: Observation, ctx: PlannerContext) -> ProposedHypothesis:
        self.last_source = self.kind
        try:
            return self._converse(observation, ctx)
        except BudgetExceededError:
            raise
        except _Fallback as exc:
            reason = str(exc)
        except Exception as exc:  # the API failed for good (after the SDK's own retries)
            if _is_auth_error(exc):
                raise
            reason = f"{self.kind} API error: {type(exc).__name__}: {str(exc)[:300]}"
        ctx.journal("planner_fallback", {"reason": reason, "planner": self.name})
        self.last_source = "builtin"
        return self.fallback.propose(observation, ctx)

    def _converse(self, observation: Observation, ctx: PlannerContext) -> ProposedHypothesis:
        chat = self._open() if self._chat is None else self._chat
        self._chat = None  # a fresh conversation every step
        system = _fill(read_prompt("system.md"), max_invalid=self.max_invalid)
        user = _fill(
            read_prompt("propose.md"),
            observation=observation.render(),
            experiments_left=ctx.experiments_left,
        )
        chat.start(system, user, self._tool_defs())
        invalid = 0
        for _turn in range(self.max_turns):
            reply = self._send(chat, ctx)
            if not reply.tool_calls:
                proposal, error = self._from_text(reply.text, ctx)
                if proposal is not None:
                    return proposal
                invalid += 1
                if invalid > self.max_invalid:
                    raise _Fallback(f"no valid proposal after {invalid} attempt(s): {error}")
                chat.add_user(f"{error} Call {PROPOSE_TOOL} with valid arguments.")
                continue
            results: list[tuple[str, str, bool]] = []
            accepted: ProposedHypothesis | None = None
            for call in reply.tool_calls:
                if call.name == PROPOSE_TOOL and accepted is None:
                    proposal, error = self._validate(call, ctx)
                    if proposal is not None:
                        accepted = proposal
                        results.append((call.id, "accepted", False))
                        continue
                    invalid += 1
                    results.append((call.id, f"Invalid proposal: {error}", True))
                else:
                    results.append(self._run_tool(call, ctx))
            if accepted is not None:
                return accepted
            if invalid > self.max_invalid:
                raise _Fallback(
                    f"the model's proposal was invalid {invalid} time(s); last error: "
                    f"{results[-1][1][:300]}"
                )
            chat.add_tool_results(results)
        raise _Fallback(f"no proposal within {self.max_turns} model turns")

    def _send(self, chat: Chat, ctx: PlannerContext) -> Reply:
        meter = ctx.meter
        if meter is not None:
            meter.reserve(estimate_tokens(chat.transcript_text()), self.max_tokens)
        reply = chat.send(self.max_tokens)
        if meter is not None:
            cost = meter.add(reply.input_tokens, reply.output_tokens)
            payload: dict[str, Any] = {
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
                "cost_usd": round(cost, 8),
                "total_cost_usd": round(meter.total_cost_usd, 8),
                "model": self.model,
            }
            if self.price.note:
                payload["price_note"] = self.price.note
            ctx.journal("usage", payload)
        return reply

    # -- validation -------------------------------------------------------------------------

    def _validate(
        self, call: ToolCall, ctx: PlannerContext
    ) -> tuple[ProposedHypothesis | None, str]:
        if call.arguments is None:
            return None, call.parse_error or "arguments missing"
        try:
            proposal = ProposedHypothesis.model_validate(call.arguments)
        except pydantic.ValidationError as exc:
            return None, _describe(exc)
        error = check_pipeline(proposal, ctx.tools)
        return (None, error) if error else (proposal, "")

    def _from_text(self, text: str, ctx: PlannerContext) -> tuple[ProposedHypothesis | None, str]:
        """Some local models answer with the JSON in plain text; accept it if valid."""
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            return None, "The reply had no tool call."
        try:
            args = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            return None, f"The reply had no tool call and its JSON is invalid: {exc}."
        if not isinstance(args, dict):
            return None, "The reply had no tool call."
        call = ToolCall("text", PROPOSE_TOOL, args, text)
        proposal, error = self._validate(call, ctx)
        return proposal, f"Invalid proposal: {error}."

    # -- research tools ---------------------------------------------------------------------

    def _tool_defs(self) -> list[dict[str, Any]]:
        from soma_tools import TOOLS

        defs = [
            {
                "name": PROPOSE_TOOL,
                "description": "Propose the next experiment as a hypothesis. Call it exactly "
                "once when you have decided; the loop runs it and reports back next step.",
                "schema": ProposedHypothesis.model_json_schema(),
            }
        ]
        for name in PLANNING_TOOLS:
            spec = TOOLS[name]
            defs.append(
                {"name": name, "description": spec.description, "schema": spec.input_schema()}
            )
        return defs

    def _run_tool(self, call: ToolCall, ctx: PlannerContext) -> tuple[str, str, bool]:
        from soma_tools import TOOLS

        if call.name not in PLANNING_TOOLS:
            allowed = ", ".join((PROPOSE_TOOL, *PLANNING_TOOLS))
            return call.id, f"Unknown tool {call.name!r}; available: {allowed}", True
        if call.arguments is None:
            return call.id, f"Invalid arguments: {call.parse_error}", True
        try:
            out = TOOLS[call.name].invoke(ctx.tools, call.arguments)
        except Exception as exc:  # a tool error is information for the model, not a crash
            ctx.journal("tool_call", {"tool": call.name, "ok": False, "error": str(exc)[:500]})
            return call.id, f"{type(exc).__name__}: {exc}"[:_RESULT_CHARS], True
        entry: dict[str, Any] = {"tool": call.name, "ok": True}
        if call.name == "write_filter_source":
            entry["path"] = call.arguments.get("path")
        ctx.journal("tool_call", entry)
        text = out.render()
        if len(text) > _RESULT_CHARS:
            text = text[:_RESULT_CHARS] + "\n(cut)"
        return call.id, text, False


def check_pipeline(proposal: ProposedHypothesis, tools: Any) -> str:
    """'' when the proposal's spec, params and strategy build a graph here, else why not."""
    from soma.errors import ValidationError
    from soma.experiments import build_graph

    try:  # the same builder run_pipeline uses: refused here means refused there
        build_graph(
            proposal.spec,
            project=tools.project,
            params=proposal.params or None,
            strategy=proposal.strategy,
        )
    except ValidationError as exc:
        return f"{exc.field}: {exc.message}"
    except Exception as exc:  # a filter's constructor raising something else
        return f"spec: {type(exc).__name__}: {exc}"
    return ""


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _is_auth_error(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) in (401, 403)


class AnthropicPlanner(LLMPlanner):
    kind = "anthropic"

    def _open(self) -> Chat:
        return AnthropicChat(self.model, max_retries=self.max_retries, timeout=self.timeout)


class OpenAIPlanner(LLMPlanner):
    def __init__(self, model: str, *, compatible: bool = False, **options: Any) -> None:
        self.kind = "openai-compatible" if compatible else "openai"
        super().__init__(model, **options)

    def _open(self) -> Chat:
        return OpenAIChat(
            self.model,
            base_url=self.base_url,
            compatible=self.kind == "openai-compatible",
            max_retries=self.max_retries,
            timeout=self.timeout,
        )
