"""Live progress of a run in the terminal (rich): one block per iteration headed "experiment
3 of 20", and a spinner with a progress bar while an experiment runs. Something is printed as
soon as the printer exists, so the seconds spent opening the knowledge base and the planner
before the first iteration are not silent."""

from __future__ import annotations

from typing import Any

from soma.vocabulary import Direction

__all__ = ["ProgressPrinter", "entry_line"]


def _value(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


class ProgressPrinter:
    """``on_entry`` callback for :func:`soma_agent.run_agent` that prints as the run goes."""

    def __init__(self, console: Any = None, *, metric: str = "value") -> None:
        from rich.console import Console

        self.console = console or Console()
        self.metric = metric
        self.best: float | None = None
        self.best_id: str | None = None
        self.direction = Direction.MAXIMIZE
        self.run_id = "RUN"
        self.total: int | None = None  # the run's max_experiments, once it has started
        self.done = 0  # experiments with a result so far
        self._status: Any = None
        self.console.print("[dim]Preparing the agent run…[/]", highlight=False)
        self._spin("opening the knowledge base and the planner…")

    def __call__(self, entry: dict[str, Any]) -> None:
        kind, p, it = entry["kind"], entry.get("payload") or {}, entry.get("iteration", 0)
        if kind != "experiment_started":
            self._stop_spinner()
        c = self.console
        if kind == "run_started":
            self.metric = p.get("metric") or self.metric
            self.direction = Direction(p.get("direction") or self.direction)
            self.run_id = p.get("run_id") or self.run_id
            self.total = p.get("max_experiments")
            self.done = int(p.get("n_experiments") or 0)  # a resumed run has some already
            verb = "Resuming" if p.get("resumed") else "Starting"
            c.print(
                f"[bold]{verb} agent run[/] on line [cyan]{p.get('line')}[/] — goal: "
                f"{p.get('goal')}\n  planner {p.get('planner')}, at most "
                f"{p.get('max_experiments')} experiments, budget ${p.get('budget_usd')}"
                + (", approval required" if p.get("approve") else ""),
                highlight=False,
            )
            if p.get("price_note"):
                c.print(f"  [yellow]note:[/] {p['price_note']}", highlight=False)
        elif kind == "observation" and p.get("best_value") is not None and self.best is None:
            self.best, self.best_id = p["best_value"], p.get("best_experiment_id")
        elif kind == "hypothesis":
            source = "" if p.get("source") == "builtin" else f" [{p.get('source')}]"
            c.rule(f"iteration {it} · {self.counter(self.done + 1)}", style="dim")
            c.print(
                f"[bold cyan]{p.get('action')}[/]{source} {p.get('statement')}", highlight=False
            )
            c.print(f"  [dim]{p.get('spec')}[/]", highlight=False)
        elif kind == "awaiting_approval":
            c.print(
                f"  [bold magenta]awaiting approval[/] of {p.get('hypothesis_id')}: run "
                f"`soma agent approve {self.run_id}` or `soma agent veto {self.run_id}`",
                highlight=False,
            )
        elif kind in ("approved", "vetoed", "paused", "resumed", "injected", "control_ignored"):
            detail = p.get("reason") or p.get("hypothesis_id") or ""
            c.print(f"  [yellow]{kind}[/] by {p.get('by', '?')} {detail}", highlight=False)
        elif kind == "experiment_started":
            self._spin(f"{self.bar()} running experiment {p.get('idempotency_key')}…")
        elif kind == "experiment_result":
            self.done += 1
            self._result(p)
        elif kind == "verdict":
            style = {"supported": "green", "refuted": "red"}.get(p.get("verdict"), "yellow")
            c.print(f"  [{style}]{p.get('verdict')}[/]: [dim]{p.get('reason')}[/]", highlight=False)
        elif kind == "planner_fallback":
            c.print(
                f"  [yellow]planner fallback[/] (built-in planner this step): {p.get('reason')}",
                highlight=False,
            )
        elif kind == "usage":
            c.print(
                f"  [dim]LLM {p.get('input_tokens')}+{p.get('output_tokens')} tokens, "
                f"${p.get('total_cost_usd'):.4f} so far[/]",
                highlight=False,
            )
        elif kind == "stopped":
            c.print(f"[bold red]stopped[/]: {p.get('reason')}", highlight=False)
        elif kind == "error":
            c.print(f"[bold red]error[/]: {p.get('message')}", highlight=False)
        elif kind == "decision" and not p.get("continue"):
            c.rule(style="dim")
            c.print(f"[bold]Stopping[/]: {p.get('reason')}", highlight=False)
        elif kind == "run_finished":
            c.print(
                f"[bold]Run {p.get('status')}[/] after {p.get('n_experiments')} experiment(s); "
                # An interrupted run's entry carries no best: show the best seen so far.
                f"best {self.metric} {_value(p.get('best_value', self.best))} "
                f"({p.get('best_experiment_id', self.best_id)})",
                highlight=False,
            )
        elif kind == "report":
            c.print(f"Report: [bold]{p.get('path')}[/]", highlight=False)

    def _result(self, p: dict[str, Any]) -> None:
        value = p.get("value")
        if p.get("status") != "ok":
            error = (p.get("error") or "").splitlines()[0] if p.get("error") else ""
            self.console.print(
                f"  [red]failed[/] {p.get('experiment_id') or '(not recorded)'}: {error}",
                highlight=False,
            )
            return
        new_best = value is not None and (
            self.best is None or self.direction.better(value, self.best)
        )
        if new_best:
            self.best, self.best_id = value, p.get("experiment_id")
        mark = " [bold green]new best[/]" if new_best else f" (best {_value(self.best)})"
        replay = " [dim](recorded before; not rerun)[/]" if p.get("replayed") else ""
        self.console.print(
            f"  {self.metric} [bold]{_value(value)}[/] — {p.get('experiment_id')} in "
            f"{_duration(p.get('duration_s') or 0.0)}{mark}{replay}",
            highlight=False,
        )

    def counter(self, n: int) -> str:
        """``"experiment 3 of 20"`` (``"experiment 3"`` when the run sets no maximum)."""
        return f"experiment {n} of {self.total}" if self.total else f"experiment {n}"

    def bar(self, width: int = 20) -> str:
        """A text progress bar of the experiments done: ``━━━━╺──── 2 of 20 done``."""
        if not self.total:
            return f"{self.done} done"
        filled = min(width, round(width * self.done / self.total))
        drawn = f"[green]{'━' * filled}[/][dim]{'─' * (width - filled)}[/]"
        return f"{drawn} {self.done} of {self.total} done"

    def _spin(self, text: str) -> None:
        self._stop_spinner()
        self._status = self.console.status(text)
        self._status.start()

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        self._stop_spinner()


def entry_line(entry: Any) -> str:
    """One plain line for ``soma agent show``."""
    p = entry.payload or {}
    kind = entry.kind
    if kind == "hypothesis":
        return f"{p.get('action')}: {p.get('statement')}  [{p.get('spec')}]"
    if kind == "experiment_result":
        return f"{p.get('status')} {p.get('experiment_id')} value={_value(p.get('value'))}"
    if kind == "verdict":
        return f"{p.get('verdict')}: {p.get('reason')}"
    if kind == "decision":
        return f"{'continue' if p.get('continue') else 'stop'}: {p.get('reason')}"
    if kind == "observation":
        return str(p.get("summary", ""))
    keys = ("reason", "message", "hypothesis_id", "command", "path", "status")
    return ", ".join(f"{k}={p[k]}" for k in keys if k in p) or ""


def _duration(seconds: float) -> str:
    # Most toy-data experiments take tens of milliseconds; "0.0 s" would hide them.
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
