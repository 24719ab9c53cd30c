"""Start and resume agent runs: :func:`run_agent` and :func:`resume_agent`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soma.errors import ValidationError
from soma_agent._settings import AgentResult, AgentSettings
from soma_agent.run_control import new_run_id

__all__ = ["CHECKPOINT_FILE", "resume_agent", "run_agent"]

CHECKPOINT_FILE = "agent_checkpoints.sqlite"
_RECURSION_LIMIT = 1_000_000
OnEntry = Callable[[dict[str, Any]], None]


def run_agent(
    project: Any = ".",
    goal: str = "",
    *,
    max_experiments: int | None = None,
    budget_usd: float | None = None,
    planner: str | None = None,
    approve: bool | None = None,
    seed: int | None = None,
    line: str | None = None,
    target: float | None = None,
    patience: int | None = 10,
    max_iterations: int | None = None,
    run_id: str | None = None,
    on_entry: OnEntry | None = None,
    embedder: Any = "default",
    planner_options: dict[str, Any] | None = None,
    poll_interval_s: float = 0.2,
    tools: Any = None,
) -> AgentResult:
    """Run the research loop on ``project`` (a folder, a Project or a ToolContext) until a
    stop condition; returns how it ended. Unset options come from ``soma.toml`` ``[agent]``.

    ``on_entry(entry)`` sees every journal entry the run writes (``{"id", "iteration",
    "kind", "payload"}``), e.g. to show progress.
    """
    tools = _tools(project, tools, embedder)
    cfg = tools.project.config.agent
    settings = AgentSettings(
        goal=goal,
        max_experiments=cfg.max_experiments if max_experiments is None else max_experiments,
        budget_usd=cfg.budget_usd if budget_usd is None else budget_usd,
        planner=cfg.planner if planner is None else planner,
        approve=cfg.approve if approve is None else approve,
        seed=cfg.seed if seed is None else seed,
        line=line,
        target=target,
        patience=patience,
        max_iterations=max_iterations,
        poll_interval_s=poll_interval_s,
    )
    planner_obj = _planner(settings, planner_options)
    ln = tools.resolve_line(settings.line, field="line")
    run_id = run_id or new_run_id()
    session = _Session(tools, planner_obj, settings, run_id, ln.name, on_entry)
    session.journal_start(resumed=False)
    return session.invoke(resume=False)


def resume_agent(
    project: Any,
    run_id: str,
    *,
    on_entry: OnEntry | None = None,
    embedder: Any = "default",
    planner_options: dict[str, Any] | None = None,
    tools: Any = None,
) -> AgentResult:
    """Continue ``run_id`` from its last checkpoint (after a crash, kill or Ctrl-C).

    Experiments already recorded are not run again: each iteration's experiment has an
    idempotency key, and results already journaled are reused.
    """
    tools = _tools(project, tools, embedder)
    starts = tools.kb.journal(run_id, kinds="run_started")
    if not starts:
        raise ValidationError("run_id", f"no agent run {run_id!r} in {tools.project.root}")
    first = starts[0].payload
    settings = AgentSettings.from_dict(first.get("settings") or _legacy_settings(first))
    planner_obj = _planner(settings, planner_options)
    session = _Session(tools, planner_obj, settings, run_id, str(first.get("line")), on_entry)
    snapshot = session.graph.get_state(session.config)
    # Finished means the loop's own `finish` step wrote the run's report. A checkpoint with
    # no next step is not enough: a run killed just as a step completed can look like
    # that, and invoking it again carries on from the saved state.
    if snapshot.values and not snapshot.next and tools.kb.journal(run_id, kinds="report"):
        done = tools.kb.journal(run_id, kinds="run_finished")
        status = done[-1].payload.get("status", "unknown") if done else "unknown"
        raise ValidationError(
            "run_id", f"run {run_id} already finished ({status}); nothing to resume"
        )
    session.loop.controls.restore()
    session.journal_start(resumed=True)
    return session.invoke(resume=bool(snapshot.values))


def _tools(project: Any, tools: Any, embedder: Any) -> Any:
    if tools is not None:
        return tools
    from soma_tools import ToolContext

    if isinstance(project, ToolContext):
        return project
    return ToolContext(project, embedder=embedder)


def _planner(settings: AgentSettings, options: dict[str, Any] | None) -> Any:
    from soma_agent._planner import make_planner

    return make_planner(settings.planner, **(options or {}))


def _legacy_settings(payload: dict[str, Any]) -> dict[str, Any]:
    keys = ("goal", "planner", "max_experiments", "budget_usd", "approve", "line")
    return {k: payload[k] for k in keys if k in payload}


def _import_filters(tools: Any) -> None:
    """Import the project's filters (once per run: a probe in a worker process, then the
    import here). A failure is left for the loop's first observe step, which reports it."""
    with contextlib.suppress(Exception):
        tools.catalog()


class _Session:
    """One process driving one run: the loop, its checkpointer and its compiled graph."""

    def __init__(
        self,
        tools: Any,
        planner: Any,
        settings: AgentSettings,
        run_id: str,
        line: str,
        on_entry: OnEntry | None,
    ) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        from soma_agent._budget import UsageMeter
        from soma_agent._loop import AgentLoop

        self.tools, self.planner, self.settings, self.run_id = tools, planner, settings, run_id
        # Start-up work, overlapped: the filters import beside LangGraph's import and compile
        # (the first observe step paid it, about 2.5 s of a 40-experiment run's loop).
        filters = threading.Thread(target=_import_filters, args=(tools,), daemon=True)
        filters.start()
        meter = None
        price = getattr(planner, "price", None)
        if price is not None:
            meter = UsageMeter(settings.budget_usd, price)
            meter.restore(tools.kb.journal(run_id, kinds="usage"))
        self.loop = AgentLoop(
            tools, planner, settings, run_id, line=line, meter=meter, on_entry=on_entry
        )
        # Bookkeeping off the hot path: experiments are recorded without their embedding and
        # a background thread loads the model once and embeds them in batches; the planner's
        # semantic searches never wait for it (they say what is not searchable yet).
        tools.kb.embed_in_background()
        path = Path(tools.project.state_dir) / CHECKPOINT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), check_same_thread=False)
        self.graph = self.loop.build(SqliteSaver(self.conn))
        self.config = {"configurable": {"thread_id": run_id}, "recursion_limit": _RECURSION_LIMIT}
        filters.join()

    def journal_start(self, *, resumed: bool) -> None:
        s = self.settings
        payload: dict[str, Any] = {
            "run_id": self.run_id,
            "goal": s.goal,
            "planner": getattr(self.planner, "name", s.planner),
            "max_experiments": s.max_experiments,
            "budget_usd": s.budget_usd,
            "approve": s.approve,
            "line": self.loop.line,
            "metric": self.loop.metric,
            "direction": self.loop.direction,
            "pid": os.getpid(),
            "seed": s.seed,
            "settings": s.to_dict(),
        }
        note = getattr(getattr(self.planner, "price", None), "note", "")
        if note:
            payload["price_note"] = note
        if resumed:
            payload["resumed"] = True
        self.loop.journal("run_started", payload, iteration=self._last_iteration())

    def _last_iteration(self) -> int:
        entries = self.tools.kb.journal(self.run_id)
        return max((e.iteration for e in entries), default=0)

    def invoke(self, *, resume: bool) -> AgentResult:
        from soma_agent._loop import initial_state

        loop = self.loop
        try:
            # "sync": each step's checkpoint is on disk before the next step starts, so a
            # kill -9 loses at most the step that was running (its experiment is then
            # found again by its idempotency key).
            final = self.graph.invoke(
                None if resume else initial_state(), self.config, durability="sync"
            )
        except KeyboardInterrupt:
            reason = f"interrupted (Ctrl-C); continue with `soma agent resume {self.run_id}`"
            loop.journal("stopped", {"reason": reason})
            loop.journal(
                "run_finished",
                {"status": "stopped", "reason": reason, "n_experiments": self._n_experiments()},
            )
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            loop.journal("error", {"message": message[:2000]})
            loop.journal(
                "run_finished",
                {
                    "status": "failed",
                    "reason": message[:500],
                    "n_experiments": self._n_experiments(),
                },
            )
            raise
        finally:
            self.conn.close()
            # What the worker had not embedded yet is embedded by the next query.
            self.tools.kb.stop_background_embedding()
        done = loop._find("run_finished") or {}
        return AgentResult(
            run_id=self.run_id,
            status=str(done.get("status") or final.get("stop_status") or "completed"),
            reason=str(done.get("reason") or final.get("stop_reason") or ""),
            n_experiments=int(final.get("n_experiments") or 0),
            iterations=int(final.get("iteration") or 0),
            best_experiment_id=done.get("best_experiment_id"),
            best_value=done.get("best_value"),
            report_path=final.get("report_path"),
            cost_usd=loop.meter.total_cost_usd if loop.meter is not None else 0.0,
            line=loop.line,
        )

    def _n_experiments(self) -> int:
        try:
            values = self.graph.get_state(self.config).values
            return int(values.get("n_experiments") or 0)
        except Exception:
            return 0
