"""LLM planners driving the real Anthropic and OpenAI SDK clients against a local server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import VALID_PROPOSAL, ScriptedServer, anthropic_reply, openai_reply

from soma.errors import ValidationError
from soma_agent import make_planner, run_agent
from soma_agent._budget import PRICES, price_for
from soma_agent.run_control import list_runs

GOAL = "maximize validation accuracy"


@pytest.fixture
def anthropic_env(monkeypatch: pytest.MonkeyPatch, llm_server: ScriptedServer) -> ScriptedServer:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm_server.url)
    return llm_server


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch, llm_server: ScriptedServer) -> ScriptedServer:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.url + "/v1")
    return llm_server


def journal(tools: Any, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in tools.kb.journal(run_id, kinds=kind)]


def test_anthropic_tool_calls_then_proposal(tools: Any, anthropic_env: ScriptedServer) -> None:
    server = anthropic_env
    server.script = [
        anthropic_reply("list_filters", {"name_contains": "Log"}, in_tokens=1200, out_tokens=80),
        anthropic_reply("propose_hypothesis", VALID_PROPOSAL, in_tokens=2000, out_tokens=150),
    ]
    result = run_agent(
        tools, GOAL, max_experiments=1, planner="anthropic:claude-sonnet-4-6", tools=tools
    )
    assert result.n_experiments == 1
    hyp = journal(tools, result.run_id, "hypothesis")[0]
    assert hyp["source"] == "anthropic" and hyp["spec"] == VALID_PROPOSAL["spec"]
    assert journal(tools, result.run_id, "tool_call") == [{"tool": "list_filters", "ok": True}]
    exp = tools.kb.experiments(run_id=result.run_id)[0]
    assert exp.hypothesis == VALID_PROPOSAL["statement"] and exp.status == "ok"
    # Real SDK requests: the tools offered, the list_filters result sent back.
    first, second = server.requests
    assert first["path"] == "/v1/messages"
    names = {t["name"] for t in first["body"]["tools"]}
    assert {"propose_hypothesis", "list_filters", "write_filter_source"} <= names
    assert "run_pipeline" not in names
    tool_result = second["body"]["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and "LogReg" in tool_result["content"]
    # Cost from the price table: sonnet is $3 / $15 per million tokens.
    usage = journal(tools, result.run_id, "usage")
    expected = (1200 + 2000) * 3e-6 + (80 + 150) * 15e-6
    assert usage[-1]["total_cost_usd"] == pytest.approx(expected)
    assert result.cost_usd == pytest.approx(expected)


def test_openai_malformed_json_then_valid(tools: Any, openai_env: ScriptedServer) -> None:
    server = openai_env
    server.script = [
        openai_reply("propose_hypothesis", '{"statement": "oops", "spec": '),
        openai_reply("propose_hypothesis", json.dumps(VALID_PROPOSAL)),
    ]
    result = run_agent(tools, GOAL, max_experiments=1, planner="openai:gpt-4o-mini", tools=tools)
    assert journal(tools, result.run_id, "hypothesis")[0]["source"] == "openai"
    assert journal(tools, result.run_id, "planner_fallback") == []
    retry = server.requests[1]["body"]["messages"]
    assert retry[-1]["role"] == "tool" and "not valid JSON" in retry[-1]["content"]
    assert server.requests[0]["path"] == "/v1/chat/completions"


def test_invalid_spec_is_sent_back_with_the_error(tools: Any, openai_env: ScriptedServer) -> None:
    bad = {**VALID_PROPOSAL, "spec": "StandardScale() >> LogRegression(C=1.0)"}
    openai_env.script = [
        openai_reply("propose_hypothesis", json.dumps(bad)),
        openai_reply("propose_hypothesis", json.dumps(VALID_PROPOSAL)),
    ]
    result = run_agent(tools, GOAL, max_experiments=1, planner="openai:gpt-4o-mini", tools=tools)
    feedback = openai_env.requests[1]["body"]["messages"][-1]["content"]
    assert "LogRegression" in feedback and "did you mean 'LogReg'" in feedback
    assert journal(tools, result.run_id, "hypothesis")[0]["spec"] == VALID_PROPOSAL["spec"]


def test_rate_limit_then_success(tools: Any, anthropic_env: ScriptedServer) -> None:
    limited = (
        429,
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
        {"retry-after-ms": "20"},
    )
    anthropic_env.script = [limited, anthropic_reply("propose_hypothesis", VALID_PROPOSAL)]
    result = run_agent(
        tools, GOAL, max_experiments=1, planner="anthropic:claude-haiku-4-5", tools=tools
    )
    assert len(anthropic_env.requests) == 2  # the SDK retried once
    assert journal(tools, result.run_id, "planner_fallback") == []
    assert journal(tools, result.run_id, "hypothesis")[0]["source"] == "anthropic"


def test_repeated_invalid_output_falls_back(tools: Any, openai_env: ScriptedServer) -> None:
    bad = {**VALID_PROPOSAL, "action": "guess"}
    openai_env.default = lambda body: openai_reply("propose_hypothesis", json.dumps(bad))
    result = run_agent(tools, GOAL, max_experiments=2, planner="openai:gpt-4o-mini", tools=tools)
    fallbacks = journal(tools, result.run_id, "planner_fallback")
    assert len(fallbacks) == 2 and "invalid 3 time(s)" in fallbacks[0]["reason"]
    assert "action" in fallbacks[0]["reason"]
    assert {h["source"] for h in journal(tools, result.run_id, "hypothesis")} == {"builtin"}
    assert result.n_experiments == 2  # the built-in planner kept the run going
    assert len(openai_env.requests) == 6  # 1 + 2 corrections per step


def test_cost_cap_stops_the_run(tools: Any, anthropic_env: ScriptedServer) -> None:
    anthropic_env.default = lambda body: anthropic_reply(
        "propose_hypothesis", VALID_PROPOSAL, in_tokens=1500, out_tokens=300
    )
    result = run_agent(
        tools,
        GOAL,
        max_experiments=10,
        budget_usd=0.05,
        planner="anthropic:claude-sonnet-4-6",
        tools=tools,
    )
    assert "dollar budget" in result.reason
    assert result.cost_usd <= 0.05
    assert len(anthropic_env.requests) == result.n_experiments < 10
    finished = journal(tools, result.run_id, "run_finished")[0]
    assert finished["cost_usd"] == pytest.approx(result.cost_usd)


def test_missing_keys_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="ANTHROPIC_API_KEY"):
        make_planner("anthropic:claude-sonnet-4-6")
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        make_planner("openai:gpt-4o")
    # A local OpenAI-compatible server needs no key, and costs nothing.
    planner = make_planner("openai-compatible:http://127.0.0.1:9/v1#llama3.1")
    assert planner.price.input_per_mtok == 0 and planner.name.endswith("#llama3.1")


def test_unknown_model_priced_conservatively(tools: Any, anthropic_env: ScriptedServer) -> None:
    price = price_for("claude-next-ultra")
    assert not price.known and price.output_per_mtok == max(
        p.output_per_mtok for p in PRICES.values()
    )
    anthropic_env.script = [anthropic_reply("propose_hypothesis", VALID_PROPOSAL)]
    result = run_agent(
        tools, GOAL, max_experiments=1, planner="anthropic:claude-next-ultra", tools=tools
    )
    started = journal(tools, result.run_id, "run_started")[0]
    assert "not in the price table" in started["price_note"]
    assert "price_note" in journal(tools, result.run_id, "usage")[0]


NEW_FILTER = '''
import numpy as np

from soma import Filter


class Clip(Filter):
    """Clip pixel intensities to [0, limit] (scaler)."""

    limit = 8.0

    def forward(self, x, state):
        return np.clip(np.asarray(x, dtype=float), 0.0, self.limit)
'''


def test_model_writes_a_filter_and_uses_it(tools: Any, anthropic_env: ScriptedServer) -> None:
    proposal = {**VALID_PROPOSAL, "spec": "Clip(limit=10.0) >> StandardScale() >> LogReg(C=0.5)"}
    anthropic_env.script = [
        anthropic_reply("write_filter_source", {"path": "clip.py", "content": NEW_FILTER}),
        anthropic_reply("propose_hypothesis", proposal),
    ]
    result = run_agent(tools, GOAL, max_experiments=1, planner="anthropic:claude-haiku-4-5",
                       tools=tools)  # fmt: skip
    calls = journal(tools, result.run_id, "tool_call")
    assert calls == [{"tool": "write_filter_source", "ok": True, "path": "clip.py"}]
    assert (tools.project.filters_dir / "clip.py").read_text(encoding="utf-8") == NEW_FILTER
    tool_result = anthropic_env.requests[1]["body"]["messages"][-1]["content"][0]["content"]
    assert "Clip" in tool_result
    exp = tools.kb.experiments(run_id=result.run_id)[0]
    assert exp.status == "ok" and "Clip(limit=10.0)" in exp.pipeline_summary


def _text_reply(text: str) -> Any:
    status, body, headers = openai_reply("unused", "{}")
    body["choices"][0]["message"] = {"role": "assistant", "content": text, "tool_calls": None}
    body["choices"][0]["finish_reason"] = "stop"
    return status, body, headers


def test_openai_compatible_server_without_key(
    tools: Any, llm_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local server (Ollama, vLLM, llama.cpp): no API key, no charge, a 429 retried, and a
    # proposal given as JSON in plain text (many local models ignore tool calling).
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    limited = (429, {"error": {"message": "busy", "type": "rate_limit"}}, {"retry-after-ms": "20"})
    llm_server.script = [
        limited,
        _text_reply("Here is my proposal:\n" + json.dumps(VALID_PROPOSAL)),
    ]
    planner = f"openai-compatible:{llm_server.url}/v1#llama3.1"
    result = run_agent(tools, GOAL, max_experiments=1, planner=planner, tools=tools)
    assert result.n_experiments == 1 and result.cost_usd == 0.0
    hyp = journal(tools, result.run_id, "hypothesis")[0]
    assert hyp["source"] == "openai-compatible" and hyp["spec"] == VALID_PROPOSAL["spec"]
    assert journal(tools, result.run_id, "planner_fallback") == []
    assert "no charge" in journal(tools, result.run_id, "run_started")[0]["price_note"]
    assert len(llm_server.requests) == 2  # the 429, then the answer
    body = llm_server.requests[-1]["body"]
    assert llm_server.requests[-1]["path"] == "/v1/chat/completions"
    assert body["model"] == "llama3.1" and body["max_tokens"] == 2048
    assert body["tool_choice"] == "auto"
    assert {t["function"]["name"] for t in body["tools"]} >= {"propose_hypothesis"}


def test_api_errors_fall_back_but_auth_errors_end_the_run(
    tools: Any, anthropic_env: ScriptedServer
) -> None:
    down = (500, {"type": "error", "error": {"type": "api_error", "message": "down"}}, {})
    anthropic_env.default = lambda body: down
    result = run_agent(tools, GOAL, max_experiments=1, planner="anthropic:claude-haiku-4-5",
                       planner_options={"max_retries": 0}, tools=tools)  # fmt: skip
    (fallback,) = journal(tools, result.run_id, "planner_fallback")
    assert fallback["reason"].startswith("anthropic API error: InternalServerError")
    assert result.n_experiments == 1  # the built-in planner took the step
    denied = (401, {"type": "error", "error": {"type": "authentication_error",
                                               "message": "bad key"}}, {})  # fmt: skip
    anthropic_env.default = lambda body: denied
    with pytest.raises(Exception, match="bad key"):
        run_agent(tools, GOAL, max_experiments=1, planner="anthropic:claude-haiku-4-5",
                  planner_options={"max_retries": 0}, tools=tools)  # fmt: skip
    run = list_runs(tools.kb)[-1]
    assert run.status == "failed" and "bad key" in run.reason


def test_tokens_and_cost_count_for_the_whole_run_across_a_resume(
    tools: Any, anthropic_env: ScriptedServer
) -> None:
    from soma_agent import resume_agent
    from soma_agent.run_control import new_run_id

    anthropic_env.default = lambda body: anthropic_reply(
        "propose_hypothesis", VALID_PROPOSAL, in_tokens=1000, out_tokens=100
    )
    run_id = new_run_id()

    def interrupt(entry: dict[str, Any]) -> None:
        if entry["kind"] == "experiment_result":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_agent(tools, GOAL, max_experiments=2, planner="anthropic:claude-sonnet-4-6",
                  run_id=run_id, on_entry=interrupt, tools=tools)  # fmt: skip
    result = resume_agent(tools, run_id, tools=tools)
    assert result.n_experiments == 2 and len(anthropic_env.requests) == 2
    assert result.cost_usd == pytest.approx(2 * (1000 * 3e-6 + 100 * 15e-6))
    report = Path(result.report_path or "").read_text(encoding="utf-8")
    assert "LLM usage: 2000 input + 200 output tokens, $0.0090 of the $1.00 budget" in report
