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
from soma.knowledge._records import (
    ChangePoint,
    Experiment,
    Report,
    ResearchLine,
    TrajectoryPoint,
)

__all__ = ["latest_report", "report_folder", "write_report"]


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
    return "—" if value is None else f"{value:.6g}"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _plot(
    path: Path,
    line: ResearchLine,
    points: Sequence[TrajectoryPoint],
    cps: Sequence[ChangePoint],
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(1, len(points) + 1))
    ax.plot(xs, [p.value for p in points], "o-", color="#4c72b0", lw=1, ms=4, label=line.metric)
    ax.step(
        xs,
        [p.best_so_far for p in points],
        where="post",
        color="#55a868",
        lw=2,
        label="best so far",
    )
    for cp in cps:
        x = cp.index + 0.5  # between the last experiment before and the first after
        ax.axvline(x, color="#c44e52", ls="--", lw=1)
        ax.annotate(
            cp.experiment_id,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color="#c44e52",
        )
    best = points[-1].best_experiment_id
    for x, p in zip(xs, points, strict=True):
        if p.experiment_id == best:
            late = x > len(points) / 2  # keep the label inside the axes
            ax.annotate(
                f"best {p.value:.4g}\n{best}",
                (x, p.value),
                textcoords="offset points",
                xytext=(-6, -22) if late else (6, 6),
                ha="right" if late else "left",
                fontsize=7,
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8, "lw": 0},
            )
            break
    ax.set_xlabel("successful experiment (chronological)")
    ax.set_ylabel(f"{line.metric} ({line.direction})")
    ax.set_title(f"{line.name}: {line.metric}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _summary_table(
    line: ResearchLine, experiments: Sequence[Experiment], points: Sequence[TrajectoryPoint]
) -> list[str]:
    by_id = {p.experiment_id: p for p in points}
    out = [
        f"| # | experiment | started (UTC) | status | {line.metric} | best so far | action "
        "| name / pipeline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, exp in enumerate(experiments, 1):
        point = by_id.get(str(exp.id))
        best = "—" if point is None else f"{_num(point.best_so_far)} ({point.best_experiment_id})"
        label = exp.name + (f" · {exp.pipeline_summary}" if exp.pipeline_summary else "")
        out.append(
            f"| {n} | `{exp.id}` | {_when(exp.started)} | {exp.status} | "
            f"{_num(exp.metrics.get(line.metric))} | {best} | {exp.action} | {_cell(label)} |"
        )
    return out


def _best_section(line: ResearchLine, best: Experiment | None) -> list[str]:
    if best is None:
        return [f"No successful experiment has measured {line.metric} yet."]
    out = [
        f"**Best {line.metric}: {_num(best.metrics[line.metric])}** — experiment `{best.id}` "
        f"({_cell(best.name)}), started {_when(best.started)} UTC. Everything below is from "
        f"`{best.id}`.",
        "",
    ]
    if best.hypothesis:
        out += [f"- Hypothesis: {_cell(best.hypothesis, 300)}"]
    if best.pipeline_summary:
        out += [f"- Pipeline: `{_cell(best.pipeline_summary, 300)}`"]
    for field in ("seed", "code_fingerprint", "data_fingerprint", "duration_s"):
        value = getattr(best, field)
        if value is not None:
            out += [f"- {field.replace('_', ' ')}: `{value}`"]
    if best.pipeline_spec is not None:
        spec = best.pipeline_spec
        text = spec if isinstance(spec, str) else json.dumps(spec, indent=2, sort_keys=True)
        out += ["", "Pipeline spec:", "", "```", text, "```"]
    if best.params:
        out += ["", "| param | value |", "|---|---|"]
        out += [f"| {_cell(k)} | `{_cell(v)}` |" for k, v in sorted(best.params.items())]
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


def _change_point_lines(cp: ChangePoint) -> list[str]:
    # The explanation names only the ends of each segment; list every experiment behind
    # each mean so both numbers can be checked against the summary table.
    return [
        f"- At `{cp.experiment_id}`: {cp.explanation}.",
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
        _plot(png_path, line, points, cps)
        plot_path = png_path
        md += [
            f"![{line.metric} trajectory]({png_path.name})",
            "",
            "Points are the successful experiments (the summary rows with a value), in order; the "
            "step line is the best so far; dashed lines mark change points (labelled with the "
            "first experiment after the change).",
        ]
    else:
        png_path.unlink(missing_ok=True)
        md += [f"No successful experiment has measured {line.metric} yet."]
    md += ["", "## Change points", ""]
    if cps:
        md += [text for cp in cps for text in _change_point_lines(cp)]
    else:
        md += ["None detected." if len(points) >= 4 else "Too few points to detect any (< 4)."]
    md += ["", "## Failed experiments", "", *_failures(experiments), ""]
    markdown = "\n".join(md)
    md_path.write_text(markdown, encoding="utf-8")
    return Report(line=line.name, markdown=markdown, path=md_path, plot_path=plot_path)
