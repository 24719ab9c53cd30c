"""Soma's prompt templates, shipped as package data (``prompts/soma_prompts/`` in the repo).

Read them with :mod:`importlib.resources`::

    from importlib.resources import files
    text = files("soma_prompts").joinpath("plan_next_experiment.md").read_text("utf-8")

A template that starts with a front-matter block is also served as an MCP prompt by
``soma mcp`` (under ``name``, with the listed arguments)::

    ---
    name: plan_next_experiment
    description: One line saying what the prompt is for.
    arguments:
      - goal (required): What the argument means.
      - research_line (optional): ...
    ---
    Body text with {{goal}} placeholders.

Besides its arguments, a body may use ``{{project}}`` (the project's name, question and
metrics) and ``{{lines}}`` (a table of its research lines), filled in when the prompt is
fetched. Templates without front matter are for in-process use (the agent) only.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["read_template", "template_names"]


def template_names() -> list[str]:
    """File names of every template (``*.md`` and ``*.txt``), sorted."""
    return sorted(
        entry.name for entry in files(__name__).iterdir() if entry.name.endswith((".md", ".txt"))
    )


def read_template(name: str) -> str:
    """The text of one template file, e.g. ``read_template("plan_next_experiment.md")``."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")
