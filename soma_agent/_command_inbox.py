"""The agent's side of the control protocol: read ``control`` entries, answer each one.

Every answer carries ``control_id`` (the command's journal id), so a restarted agent knows
which commands it already handled, whether it was paused, and which injected hypotheses are
still waiting — the journal is the truth, not the process's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ControlState", "Controls"]

Journal = Callable[[str, dict[str, Any]], Any]


@dataclass
class ControlState:
    after_id: int = 0
    paused: bool = False
    stop_reason: str | None = None
    injected: list[dict[str, Any]] = field(default_factory=list)
    decision: str | None = None  # approved / vetoed, for the hypothesis awaiting approval
    decided_by: str | None = None


class Controls:
    """Reads and answers the control commands of one run."""

    def __init__(self, kb: Any, run_id: str, *, poll_interval_s: float = 0.2) -> None:
        self.kb = kb
        self.run_id = run_id
        self.poll_interval_s = poll_interval_s
        self.state = ControlState()

    def restore(self) -> None:
        """Rebuild the state from the journal (a resumed run)."""
        st = ControlState()
        consumed: set[int] = set()
        for e in self.kb.journal(self.run_id):
            p = e.payload or {}
            cid = p.get("control_id")
            if isinstance(cid, int):
                st.after_id = max(st.after_id, cid)
            if e.kind == "paused":
                st.paused = True
            elif e.kind in ("resumed", "run_finished"):
                st.paused = False
            elif e.kind == "injected" and isinstance(p.get("hypothesis"), dict):
                st.injected.append({**p["hypothesis"], "control_id": cid})
            elif e.kind == "hypothesis" and isinstance(p.get("injected_control_id"), int):
                consumed.add(p["injected_control_id"])
        st.injected = [h for h in st.injected if h.get("control_id") not in consumed]
        self.state = st

    def expect_decision(self) -> None:
        """A new hypothesis awaits approval: forget the previous one's decision."""
        self.state.decision = None
        self.state.decided_by = None

    def poll(
        self,
        journal: Journal,
        *,
        awaiting: str | None = None,
        block: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ControlState:
        """Handle new commands; while paused (or, with ``block``, until ``awaiting`` is
        approved or vetoed) keep polling. Returns early on stop."""
        st = self.state
        while True:
            for entry in self.kb.journal(self.run_id, after_id=st.after_id, kinds="control"):
                st.after_id = max(st.after_id, int(entry.id))
                self._handle(entry, journal, awaiting)
            if st.stop_reason is not None:
                return st
            waiting = block and awaiting is not None and st.decision is None
            if not st.paused and not waiting:
                return st
            sleep(self.poll_interval_s)

    def _handle(self, entry: Any, journal: Journal, awaiting: str | None) -> None:
        st = self.state
        p = entry.payload or {}
        command, by, cid = p.get("command"), p.get("by", "cli"), int(entry.id)
        if command == "pause":
            if st.paused:
                journal(
                    "control_ignored",
                    {"control_id": cid, "command": command, "reason": "already paused"},
                )
                return
            st.paused = True
            journal("paused", {"by": by, "control_id": cid})
        elif command == "resume":
            if not st.paused:
                journal(
                    "control_ignored",
                    {"control_id": cid, "command": command, "reason": "the run is not paused"},
                )
                return
            st.paused = False
            journal("resumed", {"by": by, "control_id": cid})
        elif command == "stop":
            st.stop_reason = f"stop requested by {by}"
            st.paused = False
            journal("stopped", {"reason": st.stop_reason, "by": by, "control_id": cid})
        elif command in ("approve", "veto"):
            if awaiting is None or st.decision is not None:
                journal(
                    "control_ignored",
                    {
                        "control_id": cid,
                        "command": command,
                        "reason": "no hypothesis awaits approval",
                    },
                )
                return
            st.decision = "approved" if command == "approve" else "vetoed"
            st.decided_by = by
            journal(st.decision, {"hypothesis_id": awaiting, "by": by, "control_id": cid})
        elif command == "inject":
            hypothesis = p.get("hypothesis")
            if not isinstance(hypothesis, dict) or not hypothesis.get("spec"):
                journal(
                    "control_ignored",
                    {
                        "control_id": cid,
                        "command": command,
                        "reason": "inject needs a hypothesis with a spec",
                    },
                )
                return
            st.injected.append({**hypothesis, "control_id": cid})
            journal(
                "injected",
                {"control_id": cid, "by": by, "hypothesis": hypothesis, "queue": len(st.injected)},
            )
        else:
            journal(
                "control_ignored",
                {"control_id": cid, "command": str(command), "reason": "unknown command"},
            )
