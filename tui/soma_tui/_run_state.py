"""One watched agent run: its journal read incrementally, folded by ``soma_agent.run_control``.

The TUI reads only the entries after the last id it has seen (``kb.journal(run_id,
after_id=...)``) and keeps them in memory; the state is folded by the agent's own
``summarize_journal`` so the dashboard and ``soma agent show`` never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from soma_agent.run_control import RunSummary, summarize_journal
from soma_tui._format import format_time, format_value

__all__ = ["RunWatch", "entry_text"]


def _field(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


@dataclass
class RunWatch:
    """The entries of one run seen so far and their folded :class:`RunSummary`."""

    run_id: str
    entries: list[Any] = field(default_factory=list)
    last_entry_id: int = 0
    summary: RunSummary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = RunSummary(run_id=self.run_id)

    def add(self, entries: Sequence[Any], *, check_pid: bool = True) -> list[Any]:
        """Append the entries not seen yet, refold, and return those new ones."""
        new = [e for e in entries if int(_field(e, "id", 0) or 0) > self.last_entry_id]
        if new:
            self.entries.extend(new)
            self.last_entry_id = max(int(_field(e, "id", 0) or 0) for e in new)
        self.refold(check_pid=check_pid)
        return new

    def refold(self, *, check_pid: bool = True) -> None:
        """Fold again (also notices an agent process that vanished: status ``interrupted``)."""
        if self.entries:
            self.summary = summarize_journal(self.run_id, self.entries, check_pid=check_pid)

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def live(self) -> bool:
        return self.summary.live

    @property
    def paused(self) -> bool:
        return self.summary.status == "paused"

    @property
    def awaiting_approval(self) -> bool:
        return self.summary.live and self.summary.pending_hypothesis is not None

    @property
    def hypothesis(self) -> dict[str, Any] | None:
        """The pending hypothesis, else the latest one proposed."""
        return self.summary.pending_hypothesis or self.summary.last_hypothesis

    @property
    def last_decision(self) -> str:
        for entry in reversed(self.entries):
            if _field(entry, "kind") == "decision":
                payload = dict(_field(entry, "payload", None) or {})
                verb = "continue" if payload.get("continue") else "stop"
                return f"{verb}: {payload.get('reason', '')}".strip()
        return ""


_KIND_STYLES = {
    "run_started": "bold",
    "hypothesis": "cyan",
    "awaiting_approval": "bold magenta",
    "approved": "green",
    "vetoed": "red",
    "experiment_result": "",
    "verdict": "bold",
    "decision": "blue",
    "paused": "yellow",
    "resumed": "green",
    "stopped": "bold red",
    "planner_fallback": "yellow",
    "run_finished": "bold",
    "error": "bold red",
    "control": "magenta",
    "control_ignored": "yellow",
    "injected": "magenta",
}


def _summary(kind: str, p: dict[str, Any]) -> str:
    if kind == "run_started":
        return f"goal: {p.get('goal', '')} (planner {p.get('planner', '?')})"
    if kind == "observation":
        return str(p.get("summary") or f"best {format_value(p.get('best_value'))}")
    if kind == "hypothesis":
        action = f"[{p['action']}] " if p.get("action") else ""
        return f"{action}{p.get('statement', '')}"
    if kind in ("awaiting_approval", "approved", "vetoed"):
        by = f" by {p['by']}" if p.get("by") else ""
        return f"{p.get('hypothesis_id', '')}{by}"
    if kind == "experiment_result":
        tail = f" error: {p['error']}" if p.get("error") else ""
        return f"{p.get('status', '?')} value {format_value(p.get('value'))}{tail}"
    if kind == "verdict":
        return f"{p.get('verdict', '?')}: {p.get('reason', '')}"
    if kind == "decision":
        return ("continue" if p.get("continue") else "stop") + f": {p.get('reason', '')}"
    if kind == "usage":
        return f"cost ${float(p.get('total_cost_usd') or 0):.4f}"
    if kind == "run_finished":
        best = format_value(p.get("best_value"))
        return f"{p.get('status', '?')}: {p.get('reason', '')} best {best}"
    if kind == "control":
        extra = f" {p['hypothesis'].get('statement', '')}" if p.get("hypothesis") else ""
        return f"{p.get('command', '?')} by {p.get('by', '?')}{extra}"
    if kind == "injected":
        statement = (p.get("hypothesis") or {}).get("statement", "")
        return f"{statement} (queue {p.get('queue', '?')})"
    if kind == "control_ignored":
        return f"{p.get('command', '?')}: {p.get('reason', '')}"
    if kind == "experiment_started":
        return str(p.get("spec") or p.get("hypothesis_id", ""))
    if kind == "report":
        return str(p.get("path", ""))
    for key in ("reason", "message", "summary"):
        if p.get(key):
            return str(p[key])
    return ""


def entry_text(entry: Any) -> Text:
    """One decision-log line: time, iteration, kind and a short summary."""
    kind = str(_field(entry, "kind", ""))
    payload = dict(_field(entry, "payload", None) or {})
    moment = (
        _field(entry, "time", None) or _field(entry, "created", None) or _field(entry, "ts", None)
    )
    text = Text()
    text.append(f"{format_time(moment)} ", style="dim")
    text.append(f"it{_field(entry, 'iteration', 0) or 0:<3}", style="dim")
    text.append(f"{kind:<18}", style=_KIND_STYLES.get(kind, ""))
    text.append(_summary(kind, payload))
    return text
