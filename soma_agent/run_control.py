"""Steer and inspect agent runs through the knowledge-base journal (no other channel).

Both sides of the control protocol use these helpers: the agent loop, the TUI and
``soma agent pause|resume|stop|approve|veto|inject RUN``. A command is one journal entry
of kind ``control``; the running agent reads the entries after the last one it handled
between steps (every ~0.2 s while paused or awaiting approval) and answers each with a
state entry (``paused``, ``resumed``, ``stopped``, ``approved``, ``vetoed``, ...).

This module imports nothing heavy (no LangGraph, no LLM SDK, no torch), so a dashboard can
import it at start-up.

>>> new_run_id().startswith("run-")
True
>>> summarize_journal("run-x", [
...     {"id": 1, "iteration": 0, "kind": "run_started", "payload": {"goal": "g"}},
...     {"id": 2, "iteration": 1, "kind": "paused", "payload": {}},
... ], check_pid=False).status
'paused'
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from soma.errors import ValidationError

__all__ = [
    "COMMANDS",
    "LIVE_STATUSES",
    "Command",
    "RunSummary",
    "list_runs",
    "new_run_id",
    "run_status",
    "send_control",
    "summarize_journal",
]

Command = Literal["pause", "resume", "stop", "approve", "veto", "inject"]
COMMANDS: tuple[str, ...] = ("pause", "resume", "stop", "approve", "veto", "inject")
#: Statuses of a run that still reads control commands.
LIVE_STATUSES = frozenset({"running", "paused", "awaiting_approval"})
_BY = ("tui", "cli", "api")


def new_run_id(now: float | None = None) -> str:
    """A fresh run id, ``run-YYYYMMDD-HHMMSS-xxxx`` (local time, 4 random hex digits)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"run-{stamp}-{secrets.token_hex(2)}"


@dataclass
class RunSummary:
    """What the journal says about one run (folded from all of its entries).

    ``status`` is one of running, paused, awaiting_approval (live), completed, stopped,
    failed (finished), or interrupted: the journal says live but the agent process
    (``pid``, on this machine) is gone — ``soma agent resume RUN`` continues it.
    """

    run_id: str
    goal: str = ""
    status: str = "running"
    started: str | None = None
    finished: str | None = None
    n_experiments: int = 0
    best_value: float | None = None
    best_experiment_id: str | None = None
    iteration: int = 0
    pending_hypothesis: dict[str, Any] | None = None
    paused: bool = False
    planner: str = ""
    line: str | None = None
    metric: str | None = None
    direction: str | None = None
    max_experiments: int | None = None
    budget_usd: float | None = None
    approve: bool = False
    cost_usd: float = 0.0
    pid: int | None = None
    reason: str = ""
    report_path: str | None = None
    last_hypothesis: dict[str, Any] | None = None
    last_entry_id: int = 0
    hypotheses: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "hypotheses"}
        data["live"] = self.live
        return data


def send_control(
    kb: Any,
    run_id: str,
    command: str,
    hypothesis: dict[str, Any] | None = None,
    by: str = "cli",
) -> int:
    """Journal a control command for ``run_id``; returns the entry's id.

    ``hypothesis`` is required for ``inject`` (keys: statement, spec, and optionally params,
    rationale, expected_effect, action, parent_id, line, n_trials — with action "tune", a
    study of that many trials) and refused for the other commands.
    """
    if command not in COMMANDS:
        raise ValidationError("command", f"expected one of {', '.join(COMMANDS)}, got {command!r}")
    if by not in _BY:
        raise ValidationError("by", f"expected one of {', '.join(_BY)}, got {by!r}")
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValidationError(
            "run_id", f"expected a run id like run-YYYYMMDD-HHMMSS-xxxx, got {run_id!r}"
        )
    payload: dict[str, Any] = {"command": command, "by": by}
    if command == "inject":
        payload["hypothesis"] = _check_injected(hypothesis)
    elif hypothesis is not None:
        raise ValidationError("hypothesis", f"only 'inject' takes a hypothesis, not {command!r}")
    return int(kb.journal_append(run_id, _current_iteration(kb, run_id), "control", payload))


def _check_injected(hypothesis: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(hypothesis, dict):
        raise ValidationError(
            "hypothesis", "inject needs a dict with at least 'statement' and 'spec'"
        )
    statement = hypothesis.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise ValidationError("hypothesis.statement", "expected a non-empty sentence")
    spec = hypothesis.get("spec")
    if not (isinstance(spec, dict) or (isinstance(spec, str) and spec.strip())):
        raise ValidationError(
            "hypothesis.spec",
            "expected a pipeline spec, e.g. 'StandardScale() >> LogReg(C=1.0)' or a JSON object",
        )
    params = hypothesis.get("params", {})
    if params is not None and not isinstance(params, dict):
        raise ValidationError("hypothesis.params", "expected a dict {'node.param': value}")
    n_trials = hypothesis.get("n_trials", 1)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or not 1 <= n_trials <= 50:
        raise ValidationError(
            "hypothesis.n_trials", f"expected an integer from 1 to 50, got {n_trials!r}"
        )
    allowed = {
        "n_trials",
        "statement",
        "spec",
        "params",
        "rationale",
        "expected_effect",
        "action",
        "parent_id",
        "line",
    }
    extra = sorted(set(hypothesis) - allowed)
    if extra:
        raise ValidationError(
            "hypothesis", f"unknown key(s) {extra}; expected some of {sorted(allowed)}"
        )
    return dict(hypothesis)


def _current_iteration(kb: Any, run_id: str) -> int:
    entries = kb.journal(run_id)
    return max((int(_get(e, "iteration", 0) or 0) for e in entries), default=0)


def run_status(kb: Any, run_id: str, *, check_pid: bool = True) -> RunSummary:
    """Fold the whole journal of ``run_id``; ValidationError when the run is unknown."""
    entries = kb.journal(run_id)
    if not entries:
        known = ", ".join(s for s in _run_ids(kb)[-5:]) or "none"
        raise ValidationError(
            "run_id", f"no agent run {run_id!r} in this project (recent: {known})"
        )
    return summarize_journal(run_id, entries, check_pid=check_pid)


def list_runs(kb: Any, *, check_pid: bool = True) -> list[RunSummary]:
    """Every agent run the knowledge base's journal knows, oldest first."""
    return [summarize_journal(r, kb.journal(r), check_pid=check_pid) for r in _run_ids(kb)]


def _run_ids(kb: Any) -> list[str]:
    runs = kb.journal_runs()
    ids = [r if isinstance(r, str) else str(_get(r, "run_id")) for r in runs]
    # The journal lists runs by their first entry, which is their start order. Sorting by the
    # id's timestamp put two runs started in the same second in random (hex suffix) order.
    return list(dict.fromkeys(ids))


def summarize_journal(run_id: str, entries: Iterable[Any], *, check_pid: bool = True) -> RunSummary:
    """Fold journal entries (objects or dicts with id, iteration, kind, payload, time)."""
    s = RunSummary(run_id=run_id)
    for entry in entries:
        kind = str(_get(entry, "kind", ""))
        p: dict[str, Any] = dict(_get(entry, "payload", None) or {})
        s.last_entry_id = max(s.last_entry_id, int(_get(entry, "id", 0) or 0))
        s.iteration = max(s.iteration, int(_get(entry, "iteration", 0) or 0))
        when = _get(entry, "time", None) or _get(entry, "created", None)
        if kind == "run_started":
            if s.started is None:
                s.started = _iso(when)
                s.goal = str(p.get("goal") or "")
                s.planner = str(p.get("planner") or "")
                s.line, s.metric, s.direction = p.get("line"), p.get("metric"), p.get("direction")
                s.max_experiments = p.get("max_experiments")
                s.budget_usd = p.get("budget_usd")
                s.approve = bool(p.get("approve"))
            s.pid = p.get("pid")  # a resumed run journals run_started again with its new pid
            s.finished = None
            s.status = "awaiting_approval" if s.pending_hypothesis else "running"
            s.paused = False
        elif kind == "hypothesis":
            s.last_hypothesis = p
            if p.get("id"):
                s.hypotheses[str(p["id"])] = p
        elif kind == "awaiting_approval":
            s.pending_hypothesis = s.hypotheses.get(str(p.get("hypothesis_id")), p)
            if not s.paused:
                s.status = "awaiting_approval"
        elif kind in ("approved", "vetoed"):
            s.pending_hypothesis = None
            if not s.paused:
                s.status = "running"
        elif kind == "experiment_result":
            if p.get("experiment_id"):
                s.n_experiments += 1
        elif kind == "observation":
            _best(s, p)
            if isinstance(p.get("n_experiments"), int):
                s.n_experiments = max(s.n_experiments, p["n_experiments"])
        elif kind == "paused":
            s.paused, s.status = True, "paused"
        elif kind == "resumed":
            s.paused = False
            s.status = "awaiting_approval" if s.pending_hypothesis else "running"
        elif kind == "usage":
            total = p.get("total_cost_usd")
            if isinstance(total, int | float):
                s.cost_usd = float(total)
        elif kind == "report":
            s.report_path = p.get("path")
            _best(s, p)
        elif kind == "stopped":
            s.reason = str(p.get("reason") or "stopped")
        elif kind == "run_finished":
            s.status = str(p.get("status") or "completed")
            s.reason = str(p.get("reason") or s.reason)
            s.finished = _iso(when)
            s.pending_hypothesis, s.paused = None, False
            _best(s, p)
            if isinstance(p.get("n_experiments"), int):
                s.n_experiments = p["n_experiments"]
    if check_pid and s.live and s.pid is not None and not _pid_alive(int(s.pid)):
        s.status = "interrupted"
        s.reason = f"agent process {s.pid} is gone; continue with `soma agent resume {run_id}`"
    return s


def _best(s: RunSummary, p: dict[str, Any]) -> None:
    value = p.get("best_value")
    if isinstance(value, int | float):
        s.best_value = float(value)
        s.best_experiment_id = p.get("best_experiment_id")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    # A zombie (killed, not yet reaped by its parent) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _get(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(value))
    iso = getattr(value, "isoformat", None)
    return iso(timespec="seconds") if callable(iso) else str(value)
