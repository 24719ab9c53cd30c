"""The ``soma://`` resources: whole records behind the bounded tool results.

* ``soma://experiments/{experiment_id}``: one experiment, every field (JSON);
* ``soma://lines``: every research line with its size, best value and trend (JSON);
* ``soma://lines/{name}``: one line, its stats and its most recent experiments (JSON);
* ``soma://lines/{name}/trajectory``: every point of the line's trajectory (JSON);
* ``soma://lines/{name}/hypotheses``: the line's path through hypothesis space: every
  experiment's step and drift, the direction changes and the metric change points (JSON);
* ``soma://lines/{name}/experiments``: every experiment of the line, summarised (JSON);
* ``soma://reports/{line}``: the line's latest Markdown report (``generate_report`` writes it);
* ``soma://lines/{name}/plots/{kind}``: a picture of the line (PNG), drawn now: ``trajectory``
  or one of Optuna's views of its experiments (``history``, ``importances``, ``parallel``,
  ``slice``, ``contour``);
* ``soma://studies``: the project's stored studies with their trial counts and best values;
* ``soma://studies/{name}/plots/{kind}``: one of Optuna's views of a stored study (PNG);
* ``soma://filters``: the whole filter catalog, with import errors (JSON);
* ``soma://filters/{file}``: the whole source of a file of the filters folder (``file``
  percent-encoded, so ``sub%2Fx.py`` for ``sub/x.py``), for sources read_filter_source cut.

Templates alone do not show in ``resources/list``: :func:`listed_resources` names the concrete
ones a client can attach (each line, its trajectory picture and report, each study's history,
the newest experiments).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from soma.errors import KnowledgeBaseError, SomaError
from soma.knowledge import PLOT_KINDS, draw_line_plot, latest_report, report_folder
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
    from mcp_types import Resource

__all__ = ["listed_resources", "register_resources"]

#: Experiments listed in soma://lines/{name}.
RECENT = 50
#: The newest experiments resources/list names (each is also reachable by its id).
LISTED_EXPERIMENTS = 20


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
        "soma://lines/{name}/plots/{kind}",
        name="line_plot",
        description="A picture of a research line, drawn now (PNG). kind: trajectory (values, "
        "best so far, change points, pipeline families) or Optuna's history, importances, "
        "parallel, slice or contour of the line's experiments.",
        mime_type="image/png",
    )
    def line_plot(name: str, kind: str) -> bytes:
        found = line_or_404(name)
        if kind not in PLOT_KINDS:
            raise ResourceNotFoundError(f"unknown plot {kind!r}; plots: {', '.join(PLOT_KINDS)}")
        records = ctx.kb.experiments(line=found.name, order="started")
        folder = report_folder(reports_root(ctx), found.name)
        return _png(draw_line_plot(found, records, kind, folder), f"line {found.name!r}")

    @server.resource(
        "soma://studies",
        name="studies",
        description="The project's stored Optuna studies: trials, best value, start.",
        mime_type="application/json",
    )
    def studies() -> str:
        rows = _studies(ctx)
        for row in rows:
            row["plots_uri"] = study_uri(row["name"], "/plots/{kind}")
        return _json(rows)

    @server.resource(
        "soma://studies/{name}/plots/{kind}",
        name="study_plot",
        description="One of Optuna's views of a stored study, drawn now (PNG). kind: history, "
        "importances, parallel, slice or contour.",
        mime_type="image/png",
    )
    def study_plot(name: str, kind: str) -> bytes:
        from soma.knowledge import OPTUNA_PLOTS
        from soma.study import draw_study_plot
        from soma.study._plots import study_folder

        if kind not in OPTUNA_PLOTS:
            raise ResourceNotFoundError(f"unknown plot {kind!r}; plots: {', '.join(OPTUNA_PLOTS)}")
        try:
            outcome = draw_study_plot(
                name,
                kind,
                project=ctx.project,
                out_dir=study_folder(reports_root(ctx), name),
            )
        except SomaError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return _png(outcome, f"study {name!r}")

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


def study_uri(name: str, suffix: str = "") -> str:
    """``soma://studies/<name><suffix>`` with the name percent-encoded."""
    return f"soma://studies/{quote(name, safe='')}{suffix}"


def _studies(ctx: ToolContext) -> list[dict[str, Any]]:
    """The project's stored studies; none (and no storage file made) before the first."""
    from soma.study import list_studies

    if not ctx.project.optuna_path.is_file():
        return []
    return list_studies(project=ctx.project)


def _png(outcome: Any, what: str) -> bytes:
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    if outcome.path is None:
        raise ResourceNotFoundError(f"no {outcome.title} of {what}: {outcome.reason}")
    return outcome.path.read_bytes()


def listed_resources(ctx: ToolContext) -> list[Resource]:
    """The concrete resources behind the templates, for ``resources/list``: each line (its
    JSON, its trajectory picture, its latest report when there is one), each stored study's
    optimisation history, and the newest experiments. Clients that browse resources (rather
    than fill in templates) can attach these."""
    from mcp_types import Resource

    out: list[Resource] = []
    root = reports_root(ctx)
    for found in ctx.kb.lines():
        label = found.description or f"{found.metric} ({found.direction})"
        out.append(
            Resource(
                uri=line_uri(found.name),
                name=f"line {found.name}",
                description=f"Research line {found.name}: {label}",
                mime_type="application/json",
            )
        )
        out.append(
            Resource(
                uri=line_uri(found.name, "/plots/trajectory"),
                name=f"line {found.name} trajectory",
                description=f"{found.metric} of line {found.name} over its experiments (PNG)",
                mime_type="image/png",
            )
        )
        if latest_report(root, found.name) is not None:
            out.append(
                Resource(
                    uri=f"soma://reports/{quote(found.name, safe='')}",
                    name=f"report {found.name}",
                    description=f"The latest Markdown report of line {found.name}",
                    mime_type="text/markdown",
                )
            )
    for study in _studies(ctx):
        out.append(
            Resource(
                uri=study_uri(study["name"], "/plots/history"),
                name=f"study {study['name']} history",
                description=f"Optimisation history of study {study['name']} "
                f"({study['n_trials']} trials, PNG)",
                mime_type="image/png",
            )
        )
    for exp in ctx.kb.experiments(order="-started", limit=LISTED_EXPERIMENTS):
        out.append(
            Resource(
                uri=f"soma://experiments/{quote(str(exp.id), safe='')}",
                name=f"experiment {exp.id}",
                description=f"{exp.name} ({exp.status}, line {exp.line})",
                mime_type="application/json",
            )
        )
    return out
