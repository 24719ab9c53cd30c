"""The ``soma://`` resources: whole records behind the bounded tool results.

* ``soma://experiments/{experiment_id}``: one experiment, every field (JSON);
* ``soma://lines``: every research line with its size, best value and trend (JSON);
* ``soma://lines/{name}``: one line, its stats and its most recent experiments (JSON);
* ``soma://lines/{name}/trajectory``: every point of the line's trajectory (JSON);
* ``soma://lines/{name}/hypotheses``: the line's path through hypothesis space: every
  experiment's step and drift, the direction changes and the metric change points (JSON);
* ``soma://lines/{name}/experiments``: every experiment of the line, summarised (JSON);
* ``soma://reports/{line}``: the line's latest Markdown report (``generate_report`` writes it);
* ``soma://filters``: the whole filter catalog, with import errors (JSON);
* ``soma://filters/{file}``: the whole source of a file of the filters folder (``file``
  percent-encoded, so ``sub%2Fx.py`` for ``sub/x.py``), for sources read_filter_source cut.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from soma.errors import KnowledgeBaseError
from soma.knowledge import latest_report
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError
from soma_tools._kb_tools import (
    change_point_rows,
    existing_line,
    experiment_hit,
    line_row,
    line_uri,
    reports_root,
    trajectory_row,
)
from soma_tools._safe_write import check_filter_path

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["register_resources"]

#: Experiments listed in soma://lines/{name}.
RECENT = 50


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, default=str, allow_nan=False)


def register_resources(server: MCPServer, ctx: ToolContext) -> None:
    """Add the soma:// resources and resource templates to ``server``."""
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    def line_or_404(name: str) -> Any:
        try:
            return existing_line(ctx, name)
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None

    @server.resource(
        "soma://experiments/{experiment_id}",
        name="experiment",
        description="One experiment of the knowledge base, every field.",
        mime_type="application/json",
    )
    def experiment(experiment_id: str) -> str:
        try:
            record = ctx.kb.get(experiment_id)
        except KnowledgeBaseError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return _json(record.model_dump(mode="json"))

    @server.resource(
        "soma://lines",
        name="research_lines",
        description="Every research line with its size, best value and trend.",
        mime_type="application/json",
    )
    def lines() -> str:
        return _json([line_row(ctx, line).model_dump(mode="json") for line in ctx.kb.lines()])

    @server.resource(
        "soma://lines/{name}",
        name="research_line",
        description="One research line: metric, size, best, trend and recent experiments.",
        mime_type="application/json",
    )
    def line(name: str) -> str:
        found = line_or_404(name)
        recent = ctx.kb.experiments(line=found.name, order="started")[-RECENT:]
        return _json(
            {
                **line_row(ctx, found).model_dump(mode="json"),
                "recent_experiments": [experiment_hit(e).model_dump(mode="json") for e in recent],
                "change_points": [
                    c.model_dump(mode="json")
                    for c in change_point_rows(ctx.kb.change_points(found.name))
                ],
                "trajectory_uri": line_uri(found.name, "/trajectory"),
                "experiments_uri": line_uri(found.name, "/experiments"),
            }
        )

    @server.resource(
        "soma://lines/{name}/trajectory",
        name="trajectory",
        description="Every point of a research line's trajectory (value and best so far).",
        mime_type="application/json",
    )
    def trajectory(name: str) -> str:
        found = line_or_404(name)
        points = ctx.stats(found).points
        return _json([trajectory_row(i, p).model_dump(mode="json") for i, p in enumerate(points)])

    @server.resource(
        "soma://lines/{name}/hypotheses",
        name="hypothesis_trajectory",
        description="A research line's path through hypothesis space: drift per experiment, "
        "direction changes (where its focus moved, explained) and metric change points.",
        mime_type="application/json",
    )
    def hypotheses(name: str) -> str:
        found = line_or_404(name)
        return _json(ctx.kb.hypothesis_trajectory(found.name).model_dump(mode="json"))

    @server.resource(
        "soma://lines/{name}/experiments",
        name="line_experiments",
        description="Every experiment of a research line, summarised, oldest first.",
        mime_type="application/json",
    )
    def line_experiments(name: str) -> str:
        found = line_or_404(name)
        records = ctx.kb.experiments(line=found.name, order="started")
        return _json([experiment_hit(e).model_dump(mode="json") for e in records])

    @server.resource(
        "soma://reports/{line}",
        name="report",
        description="The latest Markdown report of a research line (see generate_report).",
        mime_type="text/markdown",
    )
    def report(line: str) -> str:
        found = line_or_404(line)
        newest = latest_report(reports_root(ctx), found.name)
        if newest is None:
            raise ResourceNotFoundError(
                f"no report for line {found.name!r} yet; call generate_report first"
            )
        return newest.read_text(encoding="utf-8")

    @server.resource(
        "soma://filters",
        name="filters",
        description="The whole filter catalog with parameters, search spaces and import errors.",
        mime_type="application/json",
    )
    def filters() -> str:
        return _json(ctx.catalog().to_dict())

    @server.resource(
        "soma://filters/{file}",
        name="filter_source",
        description="The whole Python source of one file of the filters folder.",
        mime_type="text/x-python",
    )
    def filter_source(file: str) -> str:
        try:
            target = check_filter_path(ctx.project.filters_dir, file, field="file")
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        if not target.path.is_file():
            raise ResourceNotFoundError(f"no file {target.rel!r} in the filters folder")
        return target.path.read_text(encoding="utf-8", errors="replace")
