"""The final report: the answer to the goal, what was tried, and the line's KB report.

Every number in it sits next to the id of the experiment it comes from.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.vocabulary import Direction
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
    md += _answer(loop, best, best_value, mine, history)
    counts = Counter(h.get("verdict") or ("vetoed" if h.get("vetoed") else "none") for h in history)
    md += ["", "## What the agent tried", ""]
    if history:
        md.append(
            "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ". "
            "A verdict compares the experiment with its parent (or the best before it) by "
            "a paired test on the same validation samples (McNemar's exact test for 0/1 "
            "correctness, a paired bootstrap of per-sample errors otherwise; beyond noise "
            "when p < 0.05); the p-value column is that test's."
        )
        md += [
            "",
            f"| it | action | source | hypothesis | experiment | {loop.metric} | verdict | p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        tests = {
            e.payload.get("hypothesis_id"): e.payload.get("test") or {}
            for e in kb.journal(loop.run_id, kinds="verdict")
        }
        for h in history:
            exp = f"`{h['experiment_id']}`" if h.get("experiment_id") else "—"
            verdict = "vetoed" if h.get("vetoed") else (h.get("verdict") or "–")
            test = tests.get(h.get("hypothesis_id")) or {}
            p = f"{test['p_value']:.3g}" if "p_value" in test else test.get("rule", "–")
            md.append(
                f"| {h.get('iteration')} | {h.get('action')} | {h.get('source', '')} | "
                f"{_cell(h.get('statement'))} | {exp} | {_fmt(h.get('value'))} | {verdict} "
                f"| {p} |"
            )
    else:
        md.append("Nothing was tried.")
    md += ["", "---", "", kb_report.markdown]
    path = out_dir / "report.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return path, (best.id if best else None, best_value)


def _answer(
    loop: AgentLoop, best: Any, best_value: float | None, mine: set[str], history: list[Any]
) -> list[str]:
    from soma_agent._final import change_of, final_answer

    if best is None:
        return ["No successful experiment on this line yet, so the goal is not answered."]
    md = []
    ans = final_answer(loop.tools, loop.line, loop.metric, loop.direction)
    pick = ans.pick or best
    origin = "found by this run" if pick.id in mine else "found before this run"
    md.append(
        f"Selected on validation: the best {loop.metric} on line `{loop.line}` is "
        f"**{_fmt(ans.pick_value)}**, by experiment `{pick.id}` ({origin}):"
    )
    md += ["", f"    {pick.pipeline_summary or pick.pipeline_spec}", ""]
    if ans.exact_ties:
        md.append(
            "Tied exactly (same validation score): "
            + ", ".join(f"`{i}`" for i in ans.exact_ties)
            + "."
        )
    if ans.runner_up is not None:
        up = ans.runner_up
        if ans.comparison is not None:
            verdict = "a tie within noise" if ans.tie else "behind beyond noise"
            md.append(
                f"Runner-up `{up.id}` ({_fmt(ans.runner_up_value)}, {up.pipeline_summary}) "
                f"is {verdict}: {ans.comparison.text()}."
            )
        else:
            md.append(
                f"Runner-up `{up.id}` ({_fmt(ans.runner_up_value)}); no per-sample losses "
                "for a paired test, so a tie cannot be ruled out."
            )
    for t in ans.test:
        md.append(
            f"Test split (scored once, after selection): `{t.experiment_id}` "
            f"{loop.metric} **{t.value:.4f}** (95% bootstrap interval over {t.n} test samples "
            f"[{t.interval[0]:.4f}, {t.interval[1]:.4f}])."
        )
    if ans.test_note:
        md.append(f"Test split: {ans.test_note}.")
    md.append(
        "The validation score of the pick is the best of many tries and so biased upwards; "
        "the test score is not."
    )
    # Change points: every new best of this run, and what changed against the one before.
    sign = Direction(loop.direction).sign
    prev, current = None, None
    rows = []
    for h in history:
        value = h.get("value")
        if value is None or not h.get("experiment_id"):
            continue
        if current is None or sign * (value - current) > 0:
            if prev is not None:
                try:
                    old, new = loop.kb.get(prev), loop.kb.get(h["experiment_id"])
                    what = change_of(loop.tools, old, new, loop.tools.project.parse_spec)
                except Exception as exc:  # the report must still be written
                    what = f"(could not compare: {exc})"
                rows.append(f"- `{prev}` → `{h['experiment_id']}` ({_fmt(value)}): {what}")
            prev, current = h["experiment_id"], value
    md = [line for item in md for line in (item, "")] if md else md
    if rows:
        md += ["Change points of this run (each new best, and what changed):", "", *rows]
    elif md and md[-1] == "":
        md.pop()
    return md
