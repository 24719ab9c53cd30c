"""Thin conversations over the Anthropic and OpenAI SDKs (also OpenAI-compatible servers).

Each :class:`Chat` keeps its provider's message list and answers :meth:`Chat.send` with a
provider-neutral :class:`Reply` (tool calls with parsed or unparseable arguments, text, token
usage). The SDKs retry 429 and 5xx replies themselves (``max_retries``, honouring
``retry-after``); what still fails reaches the planner as the SDK's exception.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from soma.errors import ValidationError

__all__ = ["AnthropicChat", "Chat", "OpenAIChat", "Reply", "ToolCall", "api_key"]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str
    parse_error: str | None = None


@dataclass
class Reply:
    tool_calls: list[ToolCall] = field(default_factory=list)
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


def api_key(variable: str, *, required: bool = True) -> str | None:
    """The API key from the environment; ValidationError naming the variable if missing."""
    value = os.environ.get(variable, "").strip()
    if not value and required:
        raise ValidationError(
            variable,
            f"the planner needs an API key: set the environment variable {variable} "
            "(or use --planner builtin, which runs offline)",
        )
    return value or None


class Chat:
    """One conversation: ``start`` it, then alternate ``send`` and adding results."""

    def start(self, system: str, user: str, tools: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def send(self, max_tokens: int) -> Reply:
        raise NotImplementedError

    def add_tool_results(self, results: list[tuple[str, str, bool]]) -> None:
        """``(call_id, content, is_error)`` for every tool call of the last reply."""
        raise NotImplementedError

    def add_user(self, text: str) -> None:
        raise NotImplementedError

    def transcript_text(self) -> str:
        """Everything sent so far, as text (for token estimates)."""
        raise NotImplementedError


class AnthropicChat(Chat):
    def __init__(self, model: str, *, max_retries: int = 3, timeout: float = 120.0) -> None:
        import anthropic

        self.model = model
        self.client = anthropic.Anthropic(
            api_key=api_key("ANTHROPIC_API_KEY"), max_retries=max_retries, timeout=timeout
        )
        self.system = ""
        self.tools: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []

    def start(self, system: str, user: str, tools: list[dict[str, Any]]) -> None:
        self.system = system
        self.tools = [
            {"name": t["name"], "description": t["description"], "input_schema": t["schema"]}
            for t in tools
        ]
        self.messages = [{"role": "user", "content": user}]

    def send(self, max_tokens: int) -> Reply:
        message = self.client.messages.create(
            model=self.model,
            max_tokens=max_tokens,
            system=self.system,
            messages=self.messages,
            tools=self.tools,
            tool_choice={"type": "any"},
        )
        content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        self.messages.append({"role": "assistant", "content": content})
        reply = Reply(
            input_tokens=int(getattr(message.usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(message.usage, "output_tokens", 0) or 0),
        )
        for block in message.content:
            if block.type == "tool_use":
                args = block.input if isinstance(block.input, dict) else None
                error = None if args is not None else "tool input is not a JSON object"
                reply.tool_calls.append(
                    ToolCall(block.id, block.name, args, json.dumps(block.input), error)
                )
            elif block.type == "text":
                reply.text += block.text
        return reply

    def add_tool_results(self, results: list[tuple[str, str, bool]]) -> None:
        self.messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": cid, "content": text, "is_error": err}
                    for cid, text, err in results
                ],
            }
        )

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def transcript_text(self) -> str:
        return self.system + json.dumps(self.tools) + json.dumps(self.messages)


class OpenAIChat(Chat):
    """OpenAI chat completions; ``base_url`` points at any OpenAI-compatible server."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        compatible: bool = False,
        max_retries: int = 3,
        timeout: float = 120.0,
    ) -> None:
        import openai

        self.model = model
        self.compatible = compatible
        key = api_key("OPENAI_API_KEY", required=not compatible) or "not-needed"
        self.client = openai.OpenAI(
            api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )
        self.tools: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []

    def start(self, system: str, user: str, tools: list[dict[str, Any]]) -> None:
        self.tools = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["schema"],
                },
            }
            for t in tools
        ]
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def send(self, max_tokens: int) -> Reply:
        limit = (
            {"max_tokens": max_tokens} if self.compatible else {"max_completion_tokens": max_tokens}
        )
        completion = self.client.chat.completions.create(
            model=self.model,
            messages=self.messages,
            tools=self.tools,
            # Local servers often lack "required"; their text replies are read as JSON.
            tool_choice="auto" if self.compatible else "required",
            **limit,
        )
        usage = completion.usage
        reply = Reply(
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )
        if not completion.choices:
            return reply
        msg = completion.choices[0].message
        reply.text = msg.content or ""
        assistant: dict[str, Any] = {"role": "assistant", "content": msg.content}
        calls = []
        for call in msg.tool_calls or []:
            fn = getattr(call, "function", None)
            if fn is None:
                continue
            raw = fn.arguments or ""
            try:
                args = json.loads(raw) if raw.strip() else {}
                error = None if isinstance(args, dict) else "arguments are not a JSON object"
                args = args if isinstance(args, dict) else None
            except json.JSONDecodeError as exc:
                args, error = None, f"arguments are not valid JSON: {exc}"
            reply.tool_calls.append(ToolCall(call.id, fn.name, args, raw, error))
            calls.append(
                {"id": call.id, "type": "function", "function": {"name": fn.name, "arguments": raw}}
            )
        if calls:
            assistant["tool_calls"] = calls
        self.messages.append(assistant)
        return reply

    def add_tool_results(self, results: list[tuple[str, str, bool]]) -> None:
        for cid, text, err in results:
            self.messages.append(
                {"role": "tool", "tool_call_id": cid, "content": ("ERROR: " if err else "") + text}
            )

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def transcript_text(self) -> str:
        return json.dumps(self.tools) + json.dumps(self.messages)
