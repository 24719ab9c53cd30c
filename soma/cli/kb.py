"""``soma kb list|show|query|lines|report|drift|novelty``: look into a project's knowledge base."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import (
    AsJson,
    ProjectDir,
    check_embedder,
    console,
    error_text,
    fail,
    state_paths,
)
from soma.vocabulary import Direction

if TYPE_CHECKING:
    from soma.knowledge import Experiment, KnowledgeBase

kb_app = typer.Typer(
    name="kb", help="Browse, search and report on the knowledge base.", no_args_is_help=True
)
app.add_typer(kb_app)

KbFile = Annotated[
    Path | None, typer.Option("--kb", help="Knowledge-base file to use instead of the project's.")
]


Backend = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Vector index: 'faiss' or 'chronos' (Python 3.12); default: [kb] backend of "
        "soma.toml, else faiss.",
    ),
]
Embedder = Annotated[
    str,
    typer.Option(
        "--embedder",
        help="Semantic search model: 'default' (all-MiniLM-L6-v2, offline) or 'hashing' "
        "(no model: word overlap only).",
    ),
]


def resolve_kb_path(project: Path, kb: Path | None) -> Path:
    """The knowledge-base file the ``kb`` commands open: ``--kb`` if given, else the
    project's (``[paths] kb`` of its soma.toml, by default ``.soma/kb.sqlite``)."""
    return kb if kb is not None else state_paths(project).kb_path


@contextmanager
def _open(
    project: Path, kb: Path | None, embedder: str = "default", backend: str | None = None
) -> Iterator[KnowledgeBase]:
    """Open an existing knowledge base (reading commands never create one); errors → exit 1.

    The vector index is ``backend``, else the project's ``[kb] backend``."""
    from soma.errors import SomaError
    from soma.knowledge import KnowledgeBase

    paths = state_paths(project)
    path = kb if kb is not None else paths.kb_path
    if not path.is_file():
        raise fail(f"no knowledge base at {path} (record an experiment first, or pass --kb)")
    try:
        base = KnowledgeBase(path, embedder=embedder, backend=backend or paths.kb_backend)
    except SomaError as exc:
        raise fail(str(exc)) from None
    try:
        yield base
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    finally:
        base.close()


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _value(exp: Experiment) -> str:
    value = exp.value()
    return "—" if value is None else f"{value:.4g}"


def _experiments_table(rows: list[tuple[Experiment, float | None]], title: str) -> Any:
    from rich.table import Table
    from rich.text import Text

    width = _console().width
    scored = any(score is not None for _, score in rows)
    wide = width >= 110  # narrow terminals: ids, status, metric and text only
    header = (["score"] if scored else []) + ["id"]
    header += ["started (UTC)", "line"] if wide else []
    header += ["status", "metric", "name / hypothesis"]
    body = []
    for exp, score in rows:
        cells = [f"{score:.3f}"] if scored else []
        cells.append(exp.id or "")
        if wide:
            cells += [exp.started.strftime("%Y-%m-%d %H:%M"), (exp.line or "—")[:24]]
        metric = f"{exp.primary_metric}={_value(exp)}" if exp.primary_metric else "—"
        cells += [exp.status, metric, exp.name + (f" — {exp.hypothesis}" if exp.hypothesis else "")]
        body.append(cells)
    # Every column but the last keeps its full width (ids are copied into other commands);
    # the free text gets what is left of the terminal and is cut with an ellipsis.
    fixed = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header[:-1])]
    room = max(12, width - sum(fixed) - 3 * len(header) - 1)
    table = Table(title=title, title_justify="left")
    for name, size in zip(header[:-1], fixed, strict=True):
        right = name in ("score", "metric")
        table.add_column(name, no_wrap=True, min_width=size, justify="right" if right else "left")
    table.add_column(header[-1], no_wrap=True, max_width=room)
    for cells in body:
        label = Text(cells[-1])
        label.truncate(room, overflow="ellipsis")
        table.add_row(*cells[:-1], label)
    return table


def _console() -> Any:
    return console()


@kb_app.command("list")
def list_experiments(
    project: ProjectDir = Path("."),
    kb: KbFile = None,
    line: Annotated[str | None, typer.Option("--line", "-l", help="Only this line.")] = None,
    status: Annotated[str | None, typer.Option(help="ok, failed, pruned or running.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: AsJson = False,
) -> None:
    """The newest experiments."""
    with _open(project, kb) as base:
        found = base.experiments(line=line, status=status, limit=limit, order="-started")
        total = base.count(line=line, status=status) if len(found) == limit else len(found)
    if as_json:
        _echo_json([e.model_dump(mode="json") for e in found])
        return
    title = f"{total} experiments" if total == len(found) else f"newest {len(found)} of {total}"
    _console().print(_experiments_table([(e, None) for e in found], title))


@kb_app.command("show")
def show(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="Experiment id.")],
    project: ProjectDir = Path("."),
    kb: KbFile = None,
    as_json: AsJson = False,
) -> None:
    """Every field of one experiment."""
    from rich.table import Table

    with _open(project, kb) as base:
        exp = base.get(experiment_id)
    data = exp.model_dump(mode="json")
    if as_json:
        _echo_json(data)
        return
    table = Table(title=f"experiment {exp.id}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(key, text)
    _console().print(table)


@kb_app.command("query")
def query(
    text: Annotated[
        str | None, typer.Argument(help="What to look for, in words (omit: filters only).")
    ] = None,
    project: ProjectDir = Path("."),
    kb: KbFile = None,
    line: Annotated[str | None, typer.Option("--line", "-l", help="Only this line.")] = None,
    where: Annotated[
        str | None, typer.Option("--where", "-w", help="Metric condition, e.g. 'accuracy>0.9'.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Required tag (repeatable).")
    ] = None,
    status: Annotated[str | None, typer.Option(help="ok, failed, pruned or running.")] = None,
    origin: Annotated[str | None, typer.Option(help="python, cli, mcp, agent or study.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Started at or after (ISO time, or an age like 7d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Started at or before (ISO time or age).")
    ] = None,
    verdict: Annotated[str | None, typer.Option(help="supported, refuted or inconclusive.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="How many results.")] = 10,
    embedder: Embedder = "default",
    backend: Backend = None,
    as_json: AsJson = False,
) -> None:
    """Search experiments by meaning, combined with filters (on the chronos backend the
    --since/--until window is searched inside the index)."""
    check_embedder(embedder)
    with _open(project, kb, embedder, backend) as base:
        hits = base.query(
            text,
            line=line,
            where=where,
            tags=tag or None,
            status=status,
            origin=origin,
            since=since,
            until=until,
            verdict=verdict,
            k=k,
        )
    if as_json:
        _echo_json(
            [{"score": h.score, "experiment": h.experiment.model_dump(mode="json")} for h in hits]
        )
        return
    title = f"{len(hits)} result{'' if len(hits) == 1 else 's'}"
    title += f" for {text!r}" if text else ""
    _console().print(_experiments_table([(h.experiment, h.score) for h in hits], title))


@kb_app.command("lines")
def lines(project: ProjectDir = Path("."), kb: KbFile = None, as_json: AsJson = False) -> None:
    """Research lines with their size, best value and trend."""
    from rich.table import Table

    from soma.knowledge import summarize_line

    rows = []
    with _open(project, kb) as base:
        for ln in base.lines():
            summary = summarize_line(base, ln)
            rows.append(
                {
                    "name": ln.name,
                    "metric": ln.metric,
                    "direction": ln.direction,
                    "description": ln.description,
                    "status": ln.status,
                    "n_experiments": summary.n_experiments,
                    "best_value": summary.best_value,
                    "best_experiment_id": summary.best_experiment_id,
                    "trend": summary.trend_name,
                }
            )
    if as_json:
        _echo_json(rows)
        return
    header = ["line", "metric", "experiments", "best", "best experiment", "trend", "status"]
    body = []
    for row in rows:
        best = "—" if row["best_value"] is None else f"{row['best_value']:.4g}"
        arrow = Direction(row["direction"]).arrow
        body.append(
            [
                row["name"],
                f"{row['metric']} {arrow}",
                str(row["n_experiments"]),
                best,
                row["best_experiment_id"] or "—",
                row["trend"],
                row["status"],
            ]
        )
    out = _console()
    # Names and ids are never cut (they are typed into other commands): on a narrow terminal
    # the least needed columns go instead, status first.
    keep = list(range(len(header)))
    for drop in (6, 5, 2, 1):
        if _table_width([[r[i] for i in keep] for r in [header, *body]]) <= out.width:
            break
        keep.remove(drop)
    table = Table(title=f"{len(rows)} research lines", title_justify="left")
    for i in keep:
        width = max(len(r[i]) for r in [header, *body])
        right = header[i] in ("experiments", "best")
        table.add_column(
            header[i], justify="right" if right else "left", no_wrap=True, min_width=width
        )
    for cells in body:
        table.add_row(*(cells[i] for i in keep))
    out.print(table)


def _table_width(rows: list[list[str]]) -> int:
    """Columns of a rich table with a box: each cell padded by one space each side."""
    return sum(max(len(r[i]) for r in rows) + 3 for i in range(len(rows[0]))) + 1


@kb_app.command("report")
def report(
    line: Annotated[str, typer.Argument(metavar="LINE", help="Research line.")],
    project: ProjectDir = Path("."),
    kb: KbFile = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default PROJECT/.soma/reports).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Write a Markdown report with a trajectory plot for one research line."""
    folder = out if out is not None else project / ".soma" / "reports"
    with _open(project, kb) as base:
        made = base.generate_report(line, folder)
    if as_json:
        _echo_json(
            {
                "line": made.line,
                "path": str(made.path),
                "plot_path": None if made.plot_path is None else str(made.plot_path),
            }
        )
        return
    _console().print(f"report written to [bold]{made.path}[/]", highlight=False)
    if made.plot_path is not None:
        _console().print(f"trajectory plot: {made.plot_path}", highlight=False)


@kb_app.command("drift")
def drift(
    line: Annotated[str, typer.Argument(metavar="LINE", help="Research line.")],
    project: ProjectDir = Path("."),
    kb: KbFile = None,
    since: Annotated[
        str | None, typer.Option(help="Started at or after (ISO time or age).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Started at or before (ISO time or age).")
    ] = None,
    embedder: Embedder = "default",
    backend: Backend = None,
    as_json: AsJson = False,
) -> None:
    """A line's path through hypothesis space: drift, direction changes, metric change points."""
    from rich.table import Table

    check_embedder(embedder)
    with _open(project, kb, embedder, backend) as base:
        path = base.hypothesis_trajectory(line, since=since, until=until)
    if as_json:
        _echo_json(path.model_dump(mode="json"))
        return
    console = _console()
    console.print(
        f"[bold]{path.line}[/]: {len(path.points)} experiments, drift from the first to the "
        f"last {path.total_drift:.3f} (cosine distance; vectors from the {path.source})",
        highlight=False,
    )
    table = Table(title="direction changes", title_justify="left")
    for name in ("at", "started (UTC)", "drift", "explanation"):
        table.add_column(name, overflow="fold")
    for change in path.direction_changes:
        table.add_row(
            change.experiment_id,
            change.time.strftime("%Y-%m-%d %H:%M"),
            f"{change.drift:.3f}",
            change.explanation,
        )
    console.print(table if path.direction_changes else "no direction change", highlight=False)
    for cp in path.metric_change_points:
        _console().print(f"metric change at {cp.experiment_id}: {cp.explanation}", highlight=False)


@kb_app.command("novelty")
def novelty(
    text: Annotated[str, typer.Argument(help="The proposed hypothesis, in words.")],
    project: ProjectDir = Path("."),
    kb: KbFile = None,
    line: Annotated[str | None, typer.Option("--line", "-l", help="Only this line.")] = None,
    within: Annotated[
        str, typer.Option(help="Compare with experiments started this recently (age, e.g. 30d).")
    ] = "30d",
    any_verdict: Annotated[
        bool, typer.Option("--any-verdict", help="Compare with every experiment, not only refuted.")
    ] = False,
    k: Annotated[int, typer.Option("-k", min=1, help="How many neighbours to show.")] = 5,
    embedder: Embedder = "default",
    backend: Backend = None,
    as_json: AsJson = False,
) -> None:
    """How new a hypothesis is against those tried and refuted recently (1 = nothing close)."""
    check_embedder(embedder)
    with _open(project, kb, embedder, backend) as base:
        found = base.novelty(
            text, line=line, within=within, verdicts=() if any_verdict else ("refuted",), k=k
        )
    if as_json:
        _echo_json(found.model_dump(mode="json"))
        return
    _console().print(f"novelty {found.novelty:.3f}", highlight=False)
    rows = [(h.experiment, h.score) for h in found.nearest]
    if rows:
        _console().print(_experiments_table(rows, "nearest compared experiments"))
