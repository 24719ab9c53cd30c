"""``soma agent ...``: run the autonomous research agent, watch it and steer it.

The agent face owns this command group; ``soma`` finds it through the ``soma.commands``
entry point (``agent = "soma_agent.cli:register"``), so the core CLI never imports the agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soma.cli._common import AsJson, ProjectDir, check_embedder, fail

if TYPE_CHECKING:
    from soma_tools import ToolContext

agent_app = typer.Typer(
    name="agent",
    help="The autonomous research agent: observe → hypothesize → experiment → conclude.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``soma agent`` to ``app`` (the ``soma.commands`` entry point)."""
    app.add_typer(agent_app)


RunId = Annotated[str, typer.Argument(help="Run id (see `soma agent list`).")]
Embedder = Annotated[
    str,
    typer.Option(
        "--embedder",
        help="Knowledge-base embedder: default (all-MiniLM-L6-v2) or hashing (fast, "
        "lexical; for CI and quick tries).",
    ),
]


def _context(project: Path, embedder: str = "default") -> ToolContext:
    from soma.errors import ProjectError
    from soma_tools import ToolContext

    check_embedder(embedder)
    ctx = ToolContext(project, embedder=embedder)
    try:
        ctx.project  # noqa: B018 - load and validate soma.toml now
    except ProjectError as exc:
        raise fail(str(exc)) from None
    return ctx


def _drive(start: Any, as_json: bool) -> None:
    """Run ``start(on_entry)`` with live progress (or quietly for --json), then report."""
    from soma.errors import SomaError
    from soma_agent._progress import ProgressPrinter

    printer = None if as_json else ProgressPrinter()
    try:
        result = start(printer)
    except SomaError as exc:
        raise fail(str(exc)) from None
    finally:
        if printer is not None:
            printer.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    if result.status == "failed":
        raise typer.Exit(1)


@agent_app.command("run")
def run(
    goal: Annotated[
        str, typer.Argument(help="What to achieve, e.g. 'maximize validation accuracy'.")
    ],
    project: ProjectDir = Path("."),
    max_experiments: Annotated[
        int | None, typer.Option("--max-experiments", "-n", help="Stop after N experiments.")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="Hard cap on LLM spending (dollars).")
    ] = None,
    planner: Annotated[
        str | None,
        typer.Option(
            "--planner",
            help="builtin (offline), anthropic:MODEL, openai:MODEL or "
            "openai-compatible:URL#MODEL. Default: soma.toml \\[agent] planner.",
        ),
    ] = None,
    approve: Annotated[
        bool | None,
        typer.Option(
            "--approve/--no-approve", help="Wait for a person to approve each hypothesis."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (deterministic runs).")] = None,
    target: Annotated[
        float | None, typer.Option("--target", help="Stop once the line's best reaches this.")
    ] = None,
    patience: Annotated[
        int,
        typer.Option("--patience", help="Stop after K iterations without a new best (0: never)."),
    ] = 10,
    line: Annotated[
        str | None, typer.Option("--line", help="Research line (default: the project's).")
    ] = None,
    embedder: Embedder = "default",
    as_json: AsJson = False,
) -> None:
    """Start a run; live progress here, every decision in the knowledge-base journal."""
    from soma_agent import run_agent

    ctx = _context(project, embedder)
    options = {
        "max_experiments": max_experiments,
        "budget_usd": budget_usd,
        "planner": planner,
        "approve": approve,
        "seed": seed,
        "target": target,
        "patience": patience or None,
        "line": line,
    }
    _drive(lambda on_entry: run_agent(ctx, goal, on_entry=on_entry, tools=ctx, **options), as_json)


@agent_app.command("resume")
def resume(
    run_id: RunId,
    project: ProjectDir = Path("."),
    embedder: Embedder = "default",
    as_json: AsJson = False,
) -> None:
    """Continue a run: a paused live run gets the resume command; a run whose process is
    gone (crash, kill, Ctrl-C) continues here from its last checkpoint."""
    from soma.errors import SomaError
    from soma_agent import resume_agent
    from soma_agent import run_control as control

    ctx = _context(project, embedder)
    try:
        summary = control.run_status(ctx.kb, run_id)
    except SomaError as exc:
        raise fail(str(exc)) from None
    if summary.live:
        entry = control.send_control(ctx.kb, run_id, "resume", by="cli")
        typer.echo(f"resume sent to live run {run_id} (journal entry {entry})")
        return
    _drive(lambda on_entry: resume_agent(ctx, run_id, on_entry=on_entry, tools=ctx), as_json)


@agent_app.command("list")
def list_runs(project: ProjectDir = Path("."), as_json: AsJson = False) -> None:
    """Every agent run of the project, newest last."""
    from rich.console import Console
    from rich.table import Table

    from soma_agent import run_control as control

    ctx = _context(project)
    runs = control.list_runs(ctx.kb)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
        return
    if not runs:
        typer.echo('No agent runs yet; start one with `soma agent run "goal"`.')
        return
    table = Table(title="Agent runs")
    for col in ("run", "status", "goal", "planner", "exps", "best", "started"):
        table.add_column(col)
    for r in runs:
        best = "–" if r.best_value is None else f"{r.best_value:.4f}"
        table.add_row(
            r.run_id,
            r.status,
            r.goal[:50],
            r.planner,
            str(r.n_experiments),
            best,
            str(r.started or ""),
        )
    Console().print(table)


@agent_app.command("show")
def show(
    run_id: RunId,
    project: ProjectDir = Path("."),
    last: Annotated[int, typer.Option("--last", help="Journal entries to show.")] = 40,
    as_json: AsJson = False,
) -> None:
    """A run's status and the tail of its decision journal."""
    from rich.console import Console
    from rich.table import Table

    from soma.errors import SomaError
    from soma_agent import run_control as control
    from soma_agent._progress import entry_line

    ctx = _context(project)
    try:
        summary = control.run_status(ctx.kb, run_id)
    except SomaError as exc:
        raise fail(str(exc)) from None
    entries = ctx.kb.journal(run_id)
    if as_json:
        data = summary.to_dict()
        data["journal"] = [e.model_dump(mode="json") for e in entries[-last:]]
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    console = Console()
    best = "–" if summary.best_value is None else f"{summary.best_value:.4f}"
    console.print(
        f"[bold]{run_id}[/] — {summary.status}{': ' + summary.reason if summary.reason else ''}\n"
        f"goal: {summary.goal}\nplanner {summary.planner}; {summary.n_experiments} experiment(s)"
        f"; iteration {summary.iteration}; best {best} ({summary.best_experiment_id})"
        + (f"; LLM cost ${summary.cost_usd:.4f}" if summary.cost_usd else "")
        + (f"\nreport: {summary.report_path}" if summary.report_path else ""),
        highlight=False,
    )
    if summary.pending_hypothesis:
        console.print(
            f"[magenta]awaiting approval:[/] {summary.pending_hypothesis.get('statement')}"
        )
    table = Table(title=f"Journal (last {min(last, len(entries))} of {len(entries)})")
    for col in ("id", "it", "kind", "detail"):
        table.add_column(col)
    for e in entries[-last:]:
        table.add_row(str(e.id), str(e.iteration), e.kind, entry_line(e)[:160])
    console.print(table)


def _control_command(command: str) -> Callable[..., None]:
    def send(run_id: RunId, project: ProjectDir = Path(".")) -> None:
        from soma.errors import SomaError
        from soma_agent import run_control as control

        ctx = _context(project)
        try:
            summary = control.run_status(ctx.kb, run_id)
            if not summary.live:
                raise fail(f"run {run_id} is {summary.status}; it reads no commands now")
            entry = control.send_control(ctx.kb, run_id, command, by="cli")
        except SomaError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"{command} sent to {run_id} (journal entry {entry})")

    send.__doc__ = {
        "pause": "Pause a live run after its current step.",
        "stop": "Stop a live run after its current step (it still writes its report).",
        "approve": "Approve the hypothesis a run (started with --approve) waits on.",
        "veto": "Veto the hypothesis a run waits on; it proposes another.",
    }[command]
    return send


for _command in ("pause", "stop", "approve", "veto"):
    agent_app.command(_command)(_control_command(_command))


@agent_app.command("inject")
def inject(
    run_id: RunId,
    statement: Annotated[str, typer.Argument(help="The hypothesis, in one sentence.")],
    spec: Annotated[
        str, typer.Option("--spec", help="Pipeline spec, e.g. 'StandardScale() >> SVC(C=3.0)'.")
    ],
    params: Annotated[
        str | None, typer.Option("--params", help="JSON {'node.param': value} overrides.")
    ] = None,
    rationale: Annotated[str | None, typer.Option("--rationale", help="Why.")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Experiment id to compare against.")
    ] = None,
    tune: Annotated[
        int | None,
        typer.Option(
            "--tune",
            min=1,
            max=50,
            help="Run a study of N trials over the spec's search spaces instead of one run.",
        ),
    ] = None,
    project: ProjectDir = Path("."),
) -> None:
    """Queue a hypothesis of your own; the run tests it next (no approval needed)."""
    from soma.errors import SomaError
    from soma_agent import run_control as control

    hypothesis: dict[str, Any] = {"statement": statement, "spec": spec}
    if params:
        try:
            hypothesis["params"] = json.loads(params)
        except json.JSONDecodeError as exc:
            raise fail(f"--params: expected JSON, got {params!r} ({exc})") from None
    if rationale:
        hypothesis["rationale"] = rationale
    if parent:
        hypothesis["parent_id"] = parent
    if tune is not None:
        hypothesis["action"], hypothesis["n_trials"] = "tune", tune
    ctx = _context(project)
    try:
        from soma_agent._hypothesis import ProposedHypothesis
        from soma_agent._planner_llm import check_pipeline

        error = check_pipeline(
            ProposedHypothesis(
                statement=statement,
                spec=spec,
                params=hypothesis.get("params", {}),
                action=hypothesis.get("action", "improve"),
            ),
            ctx,
        )
        if error:
            raise fail(error)
        summary = control.run_status(ctx.kb, run_id)
        if not summary.live:
            raise fail(f"run {run_id} is {summary.status}; it reads no commands now")
        entry = control.send_control(ctx.kb, run_id, "inject", hypothesis=hypothesis, by="cli")
    except SomaError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"hypothesis queued for {run_id} (journal entry {entry})")
