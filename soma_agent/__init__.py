"""Soma's autonomous research agent: observe → hypothesize → experiment → conclude.

The loop runs on LangGraph with a SQLite checkpointer in the project's ``.soma/``, records
every experiment in the knowledge base through the same tool layer the MCP server exposes,
and journals every decision so a person (or the TUI) can watch and steer it.

>>> from soma_agent import run_agent                     # doctest: +SKIP
>>> result = run_agent("my-research", "maximize validation accuracy", max_experiments=10)
>>> result.best_experiment_id, result.report_path        # doctest: +SKIP

Importing this package is light: the loop, the planners and their SDKs load on first use
(``soma_agent.run_control`` never loads them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soma_agent._budget import PRICES, ModelPrice, UsageMeter
    from soma_agent._hypothesis import Hypothesis, Observation, ProposedHypothesis
    from soma_agent._planner import Planner, PlannerContext, PlannerError, make_planner
    from soma_agent._planner_builtin import BuiltinPlanner
    from soma_agent._planner_llm import AnthropicPlanner, LLMPlanner, OpenAIPlanner
    from soma_agent._runner import resume_agent, run_agent
    from soma_agent._settings import AgentResult, AgentSettings
    from soma_agent._verdict import Verdict, judge

__all__ = [
    "PRICES",
    "AgentResult",
    "AgentSettings",
    "AnthropicPlanner",
    "BuiltinPlanner",
    "Hypothesis",
    "LLMPlanner",
    "ModelPrice",
    "Observation",
    "OpenAIPlanner",
    "Planner",
    "PlannerContext",
    "PlannerError",
    "ProposedHypothesis",
    "UsageMeter",
    "Verdict",
    "judge",
    "make_planner",
    "resume_agent",
    "run_agent",
]

_WHERE = {
    "PRICES": "_budget",
    "ModelPrice": "_budget",
    "UsageMeter": "_budget",
    "Hypothesis": "_hypothesis",
    "Observation": "_hypothesis",
    "ProposedHypothesis": "_hypothesis",
    "Planner": "_planner",
    "PlannerContext": "_planner",
    "PlannerError": "_planner",
    "make_planner": "_planner",
    "BuiltinPlanner": "_planner_builtin",
    "LLMPlanner": "_planner_llm",
    "AnthropicPlanner": "_planner_llm",
    "OpenAIPlanner": "_planner_llm",
    "AgentResult": "_settings",
    "AgentSettings": "_settings",
    "resume_agent": "_runner",
    "run_agent": "_runner",
    "Verdict": "_verdict",
    "judge": "_verdict",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'soma_agent' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"soma_agent.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
