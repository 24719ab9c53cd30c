"""The final report: the answer to the goal, what was tried, and the line's KB report.

Every number in it sits next to the id of the experiment it comes from.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma_agent._history import experiment_value

if TYPE_CHECKING:
    from soma_agent._loop import AgentLoop, LoopState

__all__ = ["run_dir", "write_run_report"]


def run_dir(project: Any, run_id: str) -> Path:
    """``.soma/runs/<run_id>/``: the run's report and plot."""
    return Path(project.state_dir) / "runs" / run_id


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _cell(text: Any, limit: int = 110) -> str:
    text = " ".join(str(text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_run_report(
    loop: AgentLoop, state: LoopState, status: str, reason: str
) -> tuple[Path, tuple[str | None, float | None]]:
    kb, settings = loop.kb, loop.settings
    out_dir = run_dir(loop.tools.project, loop.run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    kb_report = kb.generate_report(loop.line, out_dir)
    best = kb.best(loop.line)
    best_value = experiment_value(best, loop.metric) if best else None
    history: list[dict[str, Any]] = list(state.get("history") or [])
    mine = {h["experiment_id"] for h in history if h.get("experiment_id")}
    md = [f"# Agent run {loop.run_id}", ""]
    md += [
        f"- Goal: **{settings.goal}**",
        f"- Research line: `{loop.line}` — {loop.metric} ({loop.direction})",
        f"- Planner: {settings.planner} (seed {settings.seed})",
        f"- Ended: **{status}** — {reason}",
        f"- Experiments recorded by this run: {state.get('n_experiments', 0)} of "
        f"{settings.max_experiments}; iterations: {state.get('iteration', 0)}",
    ]
    if loop.meter is not None:
        m = loop.meter
        md.append(
            f"- LLM usage: {m.input_tokens} input + {m.output_tokens} output tokens, "
            f"${m.total_cost_usd:.4f} of the ${settings.budget_usd:.2f} budget"
        )
    md += ["", "## Answer", ""]
    if best is None:
        md.append("No successful experiment on this line yet, so the goal is not answered.")
    else:
        origin = "found by this run" if best.id in mine else "found before this run"
        md.append(
            f"The best {loop.metric} on line `{loop.line}` is **{_fmt(best_value)}**, by "
            f"experiment `{best.id}` ({origin}):"
        )
        md += ["", f"    {best.pipeline_summary or best.pipeline_spec}", ""]
        first = next((h for h in history if h.get("value") is not None), None)
        if first is not None and first.get("experiment_id") != best.id:
            gain = best_value - first["value"] if best_value is not None else None
            md.append(
                f"This run's first result was {_fmt(first['value'])} (`{first['experiment_id']}`); "
                f"the best differs from it by {_fmt(gain)}."
            )
    counts = Counter(h.get("verdict") or ("vetoed" if h.get("vetoed") else "none") for h in history)
    md += ["", "## What the agent tried", ""]
    if history:
        md.append(
            "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ". "
            "A verdict compares the experiment with its parent (or the best before it) "
            "against the line's noise threshold."
        )
        md += [
            "",
            f"| it | action | source | hypothesis | experiment | {loop.metric} | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for h in history:
            exp = f"`{h['experiment_id']}`" if h.get("experiment_id") else "—"
            verdict = "vetoed" if h.get("vetoed") else (h.get("verdict") or "–")
            md.append(
                f"| {h.get('iteration')} | {h.get('action')} | {h.get('source', '')} | "
                f"{_cell(h.get('statement'))} | {exp} | {_fmt(h.get('value'))} | {verdict} |"
            )
    else:
        md.append("Nothing was tried.")
    md += ["", "---", "", kb_report.markdown]
    path = out_dir / "report.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return path, (best.id if best else None, best_value)
