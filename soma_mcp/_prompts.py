"""MCP prompts from the templates of ``soma_prompts`` (``prompts/soma_prompts/`` in the repo).

A template with a front-matter block (see :mod:`soma_prompts`) becomes one MCP prompt;
``{{argument}}`` placeholders take the caller's arguments, ``{{project}}`` and ``{{lines}}``
are filled from the project when the prompt is fetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soma_tools._context import ToolContext
from soma_tools._render import markdown_table

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["PromptTemplate", "load_prompt_templates", "parse_template", "register_prompts"]

_ARG = re.compile(
    r"^\s*-\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(\((?P<kind>required|optional)\))?"
    r"\s*:\s*(?P<doc>.*)$"
)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class PromptArg:
    name: str
    description: str
    required: bool


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    description: str
    body: str
    file: str
    arguments: tuple[PromptArg, ...] = field(default_factory=tuple)

    def render(self, values: dict[str, str], extras: dict[str, str]) -> str:
        """The body with every ``{{placeholder}}`` filled (absent optional ones: 'not given')."""
        missing = [a.name for a in self.arguments if a.required and not values.get(a.name)]
        if missing:
            raise ValueError(f"prompt {self.name!r}: missing required argument(s) {missing}")

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if values.get(key):
                return values[key]
            if key in extras:
                return extras[key]
            return "(not given)"

        return _PLACEHOLDER.sub(fill, self.body).strip() + "\n"


def parse_template(text: str, file: str) -> PromptTemplate | None:
    """The template's front matter and body; None for a template without front matter."""
    if not text.startswith("---\n"):
        return None
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError(f"{file}: front matter opened with '---' is never closed")
    header, body = text[4:end].splitlines(), text[end + 5 :]
    meta: dict[str, str] = {}
    arguments: list[PromptArg] = []
    in_args = False
    for line in header:
        if not line.strip():
            continue
        if in_args and line.startswith((" ", "\t", "-")):
            match = _ARG.match(line)
            if not match:
                raise ValueError(f"{file}: bad argument line {line!r}; expected '- name: doc'")
            arguments.append(
                PromptArg(match["name"], match["doc"].strip(), match["kind"] == "required")
            )
            continue
        key, _, value = line.partition(":")
        in_args = key.strip() == "arguments"
        if not in_args:
            meta[key.strip()] = value.strip()
    if "name" not in meta:
        raise ValueError(f"{file}: front matter needs a 'name:'")
    return PromptTemplate(meta["name"], meta.get("description", ""), body, file, tuple(arguments))


def load_prompt_templates() -> list[PromptTemplate]:
    """Every served template of the ``soma_prompts`` package."""
    import soma_prompts

    templates = []
    for file in soma_prompts.template_names():
        parsed = parse_template(soma_prompts.read_template(file), file)
        if parsed is not None:
            templates.append(parsed)
    return templates


def _extras(ctx: ToolContext, body: str) -> dict[str, str]:
    wanted = set(_PLACEHOLDER.findall(body))
    extras: dict[str, str] = {}
    if "project" in wanted:
        p = ctx.project
        metrics = ", ".join(f"{m.name} ({m.direction})" for m in p.metrics)
        question = f"\nQuestion: {p.config.description}" if p.config.description else ""
        extras["project"] = f"Project: {p.name} (metrics: {metrics}){question}"
    if "lines" in wanted:
        from soma_tools._kb_tools import line_row

        rows = [line_row(ctx, line) for line in ctx.kb.lines()[:20]]
        extras["lines"] = (
            markdown_table(
                ["line", "metric", "experiments", "best", "trend"],
                [[r.name, r.metric, r.n_experiments, r.best_value, r.trend] for r in rows],
            )
            if rows
            else f"(none yet; the default line is {ctx.default_line!r})"
        )
    return extras


def register_prompts(server: MCPServer, ctx: ToolContext) -> None:
    """Add one MCP prompt per served template to ``server``."""
    from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument

    for template in load_prompt_templates():

        def render(_template: PromptTemplate = template, **values: Any) -> str:
            text_values = {k: str(v) for k, v in values.items() if v is not None}
            return _template.render(text_values, _extras(ctx, _template.body))

        server.add_prompt(
            Prompt(
                name=template.name,
                description=template.description,
                arguments=[
                    PromptArgument(name=a.name, description=a.description, required=a.required)
                    for a in template.arguments
                ],
                fn=render,
            )
        )
