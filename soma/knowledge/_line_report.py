"""Markdown reports for a research line, with a trajectory plot beside them.

Every number in a report names the experiment it comes from: table rows carry their id, the
best configuration names its experiment, and change points name the experiments whose means
they compare. The plot is drawn with matplotlib's Agg canvas directly (no pyplot), so making
a report never touches the caller's plotting backend or needs a display.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soma.knowledge._analytics import (
    TREND_WINDOW,
    best_experiment,
    change_points,
    classify_trend,
    trajectory,
)
from soma.knowledge._optuna_plots import draw_optuna_plot, line_study
from soma.knowledge._plots import OPTUNA_PLOTS, PlotOutcome, check_plot_kind, plot_trajectory
from soma.knowledge._records import (
    ChangePoint,
    Experiment,
    Report,
    ResearchLine,
    TrajectoryPoint,
)

__all__ = [
    "draw_line_plot",
    "latest_report",
    "line_plots",
    "plot_markdown",
    "report_folder",
    "write_report",
]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "line"


def report_folder(reports_root: Path, line: str) -> Path:
    """The one place a line's report lives: ``<reports_root>/<slug>/`` (the Markdown and its
    plot side by side). ``soma kb report``, the ``generate_report`` tool and the
    ``soma://reports/{line}`` resource all go through here, so none can read a stale copy."""
    return Path(reports_root) / _slug(line)


def latest_report(reports_root: Path, line: str) -> Path | None:
    """The newest Markdown report of ``line`` under ``reports_root``, or None.

    The flat ``<slug>-report.md`` that older versions wrote beside the folders is considered
    too, so a project upgraded mid-way still gets whichever report was written last."""
    root = Path(reports_root)
    folder = report_folder(root, line)
    found = list(folder.glob("*.md")) if folder.is_dir() else []
    legacy = root / f"{_slug(line)}-report.md"
    if legacy.is_file():
        found.append(legacy)
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


def _cell(value: Any, limit: int = 80) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float | None) -> str:
    """A metric value to 4 significant digits (``0.5231404020000809`` -> ``0.5231``)."""
    return "—" if value is None else f"{value:.4g}"


_LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?:e[+-]?\d+)?")


def _short_floats(text: str) -> str:
    """Floats with more than 4 decimals written to 4 significant digits, in a pipeline
    summary or a parameter (``SVC(C=0.3177840006884068)`` -> ``SVC(C=0.3178)``)."""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.4g}", text)


def _param(value: Any) -> str:
    if isinstance(value, float) and len(repr(value)) > 6:
        return f"{value:.4g}"
    return _short_floats(str(value))


def _same_text(a: str, b: str) -> bool:
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _summary_table(
    line: ResearchLine, experiments: Sequence[Experiment], points: Sequence[TrajectoryPoint]
) -> list[str]:
    """One row per experiment. The pipeline has its own column, whole (floats shortened);
    the name is left out of it when it only repeats the pipeline."""
    by_id = {p.experiment_id: p for p in points}
    out = [
        f"| # | experiment | started (UTC) | status | {line.metric} | best so far | action "
        "| name | pipeline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, exp in enumerate(experiments, 1):
        point = by_id.get(str(exp.id))
        best = "—" if point is None else f"{_num(point.best_so_far)} ({point.best_experiment_id})"
        pipeline = _short_floats(exp.pipeline_summary)
        name = "" if pipeline and _same_text(exp.name, exp.pipeline_summary) else exp.name
        out.append(
            f"| {n} | `{exp.id}` | {_when(exp.started)} | {exp.status} | "
            f"{_num(exp.metrics.get(line.metric))} | {best} | {exp.action} | {_cell(name)} | "
            f"{_cell(pipeline, 10_000) or '—'} |"
        )
    return out


def _best_section(line: ResearchLine, best: Experiment | None) -> list[str]:
    if best is None:
        return [f"No successful experiment has measured {line.metric} yet."]
    repeats = _same_text(best.name, best.pipeline_summary)
    named = "" if repeats else f" ({_cell(_short_floats(best.name))})"
    out = [
        f"**Best {line.metric}: {_num(best.metrics[line.metric])}** — experiment `{best.id}`"
        f"{named}, started {_when(best.started)} UTC. Everything below is from `{best.id}`.",
        "",
    ]
    if best.hypothesis:
        out += [f"- Hypothesis: {_cell(best.hypothesis, 300)}"]
    if best.pipeline_summary:
        out += [f"- Pipeline: `{_cell(_short_floats(best.pipeline_summary), 10_000)}`"]
    for field in ("seed", "code_fingerprint", "data_fingerprint", "duration_s"):
        value = getattr(best, field)
        if value is not None:
            out += [f"- {field.replace('_', ' ')}: `{_param(value)}`"]
    if best.pipeline_spec is not None:
        spec = best.pipeline_spec
        text = spec if isinstance(spec, str) else json.dumps(spec, indent=2, sort_keys=True)
        out += ["", "Pipeline spec:", "", "```", text, "```"]
    if best.params:
        out += ["", "| param | value |", "|---|---|"]
        out += [f"| {_cell(k)} | `{_cell(_param(v))}` |" for k, v in sorted(best.params.items())]
    out += ["", f"| metric | value in `{best.id}` |", "|---|---|"]
    out += [f"| {_cell(k)} | {_num(v)} |" for k, v in sorted(best.metrics.items())]
    return out


def _trend_line(points: Sequence[TrajectoryPoint], trend: str, window: int) -> str:
    recent = points[-window:]
    if len(recent) < 2:
        return f"- Trend: **{trend}** (too few successful experiments to tell)"
    ids = f"`{recent[0].experiment_id}` … `{recent[-1].experiment_id}`"
    return (
        f"- Trend over the recent window, the last {len(recent)} successful experiments "
        f"({ids}): **{trend}**"
    )


def _change_point_lines(n: int, cp: ChangePoint) -> list[str]:
    # The explanation names only the ends of each segment; list every experiment behind
    # each mean so both numbers can be checked against the summary table.
    return [
        f"- At `{cp.experiment_id}` (C{n} on the plot): {_short_floats(cp.explanation)}.",
        f"  - {_num(cp.before_mean)} is the mean over: "
        + ", ".join(f"`{i}`" for i in cp.before_ids),
        f"  - {_num(cp.after_mean)} is the mean over: " + ", ".join(f"`{i}`" for i in cp.after_ids),
    ]


def _failures(experiments: Sequence[Experiment]) -> list[str]:
    failed = [e for e in experiments if e.status == "failed"]
    pruned = [e for e in experiments if e.status == "pruned"]
    if not failed and not pruned:
        return ["None."]
    out: list[str] = []
    if failed:
        out += ["| experiment | started (UTC) | name | why it failed |", "|---|---|---|---|"]
        for exp in failed:
            why = (exp.error or "").strip().splitlines()
            reason = why[-1] if why else "no error recorded"
            out.append(
                f"| `{exp.id}` | {_when(exp.started)} | {_cell(exp.name)} | {_cell(reason, 160)} |"
            )
    if pruned:
        ids = ", ".join(f"`{e.id}`" for e in pruned)
        out += ["", f"Pruned (stopped early by the study's pruner): {ids}."]
    return out


def _plot_path(folder: Path, line: str, kind: str) -> Path:
    return folder / f"{_slug(line)}-{kind}.png"


def draw_line_plot(
    line: ResearchLine, experiments: Sequence[Experiment], kind: str, folder: Path
) -> PlotOutcome:
    """Draw one figure of the line (``trajectory`` or one of Optuna's views, see
    :data:`soma.knowledge.PLOT_KINDS`) into ``folder``: the file or why it was not drawn."""
    check_plot_kind(kind)
    folder.mkdir(parents=True, exist_ok=True)
    path = _plot_path(folder, line.name, kind)
    if kind == "trajectory":
        points = trajectory(experiments, line.metric, line.direction)
        if not points:
            return PlotOutcome(kind, reason=f"no successful experiment measured {line.metric}")
        cps = change_points(experiments, line.metric, line.direction)
        plot_trajectory(path, line, experiments, points, cps)
        return PlotOutcome(kind, path=path)
    study = line_study(experiments, line.metric, line.direction, name=line.name)
    return draw_optuna_plot(study, kind, path, target_name=line.metric)


def line_plots(
    line: ResearchLine, experiments: Sequence[Experiment], folder: Path
) -> list[PlotOutcome]:
    """Optuna's views of the line (one in-memory study, drawn once per kind)."""
    study = line_study(experiments, line.metric, line.direction, name=line.name)
    out = []
    for kind in OPTUNA_PLOTS:
        path = _plot_path(folder, line.name, kind)
        path.unlink(missing_ok=True)  # a view that cannot be drawn now leaves no stale file
        out.append(draw_optuna_plot(study, kind, path, target_name=line.metric))
    return out


def plot_markdown(outcomes: Sequence[PlotOutcome]) -> list[str]:
    """A ``###`` section per figure: the image, or why it is missing."""
    md: list[str] = []
    for o in outcomes:
        md += [f"### {o.title[:1].upper()}{o.title[1:]}", ""]
        md += [f"![{o.title}]({o.path.name})" if o.path else f"Not drawn: {o.reason}.", ""]
        md += [f"Drawn from {o.note}.", ""] if o.path and o.note else []
    return md


def _parameter_section(
    line: ResearchLine, experiments: Sequence[Experiment], folder: Path
) -> list[str]:
    intro = (
        "Optuna's views of this line, each successful experiment a trial with its recorded "
        "parameters (`pipeline` is the pipeline family when the line has several; a "
        "parameter with one value throughout is left out). Importances are fANOVA's, seeded "
        "(a seeded random forest's impurity decrease when a categorical has over eight choices)."
    )
    return [intro, "", *plot_markdown(line_plots(line, experiments, folder))]


def write_report(
    line: ResearchLine, experiments: Sequence[Experiment], reports_root: Path
) -> Report:
    """Write ``<line>-report.md`` and ``<line>-trajectory.png`` into the line's folder under
    ``reports_root`` (:func:`report_folder`)."""
    out_dir = report_folder(reports_root, line.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = _slug(line.name)
    md_path = out_dir / f"{slug}-report.md"
    png_path = out_dir / f"{slug}-trajectory.png"
    points = trajectory(experiments, line.metric, line.direction)
    cps = change_points(experiments, line.metric, line.direction)
    trend = classify_trend([p.value for p in points], line.direction)
    best = best_experiment(experiments, line.metric, line.direction)
    counts = {s: sum(e.status == s for e in experiments) for s in ("ok", "failed", "pruned")}
    counts["running"] = sum(e.status == "running" for e in experiments)
    md: list[str] = [f"# Research report: {line.name}", ""]
    if line.description:
        md += [line.description, ""]
    md += [
        f"- Metric: **{line.metric}** ({line.direction})",
        f"- Experiments: {len(experiments)} ({counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['pruned']} pruned, {counts['running']} running), each listed by id in the "
        "summary",
        _trend_line(points, trend.value, TREND_WINDOW),
        f"- Generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC",
        "",
    ]
    if not experiments:
        md += ["No experiments recorded on this line yet.", ""]
    md += ["## Summary", ""]
    md += _summary_table(line, experiments, points) if experiments else ["—"]
    md += ["", "## Best configuration", "", *_best_section(line, best), ""]
    md += ["## Trajectory", ""]
    plot_path: Path | None = None
    if points:
        plot_trajectory(png_path, line, experiments, points, cps)
        plot_path = png_path
        md += [
            f"![{line.metric} trajectory]({png_path.name})",
            "",
            "x is the experiment's # in the summary (every status, in order); each pipeline "
            "family has its own colour and marker; the dark step line is the best so far. The "
            "y-axis is set by the better half of the results: a value far worse than them (a "
            "chance-level or broken configuration) is an open triangle on the axis edge, a "
            "failed experiment a cross. Dashed lines are change points (Cn, listed below), "
            "dotted lines the mean of each segment between them.",
        ]
    else:
        png_path.unlink(missing_ok=True)
        md += [f"No successful experiment has measured {line.metric} yet."]
    md += ["", "## Parameters", "", *_parameter_section(line, experiments, out_dir)]
    md += ["## Change points", ""]  # the parameter section ends with a blank line
    if cps:
        md += [text for n, cp in enumerate(cps, 1) for text in _change_point_lines(n, cp)]
    else:
        md += ["None detected." if len(points) >= 4 else "Too few points to detect any (< 4)."]
    md += ["", "## Failed experiments", "", *_failures(experiments), ""]
    markdown = "\n".join(md)
    md_path.write_text(markdown, encoding="utf-8")
    return Report(line=line.name, markdown=markdown, path=md_path, plot_path=plot_path)
