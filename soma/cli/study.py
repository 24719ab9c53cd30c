"""``soma study run|show|list`` and ``soma pbt run``: searches over pipeline files, or over
a spec on the project's own data, filters and metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import AsJson, ProjectDir, check_embedder, console, error_text, fail
from soma.vocabulary import Direction

study_app = typer.Typer(
    help="Hyperparameter studies (Optuna) over pipeline files.", no_args_is_help=True
)
pbt_app = typer.Typer(help="Population-Based Training over pipeline files.", no_args_is_help=True)
app.add_typer(study_app, name="study")
app.add_typer(pbt_app, name="pbt")

Ref = Annotated[str, typer.Argument(help="Pipeline file, FILE.py or FILE.py:NAME.")]
StudyRef = Annotated[
    str,
    typer.Argument(
        help="A pipeline file (FILE.py or FILE.py:NAME), or a spec over the project's filters "
        "such as 'StandardScale() >> SVC()': then the study uses the project's data, metrics "
        "and research line."
    ),
]
_PIPELINE_FILE = re.compile(r"[^\s()|>{}]+\.py(:[A-Za-z_]\w*)?")
Metric = Annotated[
    str | None,
    typer.Option(
        "--metric",
        "-m",
        help="Built-in metric (accuracy, mse, ...) or a label for the file's metric().",
    ),
]
DirectionOption = Annotated[
    str | None,
    typer.Option("--direction", "-d", help="maximize or minimize (default: the metric's)."),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
Name = Annotated[
    str | None,
    typer.Option("--name", help="Study name (default FILE-NAME; the same name continues)."),
]
NoKb = Annotated[
    bool, typer.Option("--no-kb", help="Do not record experiments in the project's KB.")
]
Embedder = Annotated[
    str,
    typer.Option(
        "--embedder",
        help="How the KB embeds experiments: default (all-MiniLM-L6-v2) or hashing (fast, "
        "lexical).",
    ),
]


def is_pipeline_file(ref: str) -> bool:
    """Whether ``ref`` names a pipeline file (else it is a spec over the project's filters).

    >>> is_pipeline_file("pipe.py:main"), is_pipeline_file("StandardScale() >> SVC()")
    (True, False)
    """
    return _PIPELINE_FILE.fullmatch(ref.strip()) is not None


def _load_spec(
    spec: str, project_dir: Path, metric: str | None, direction: str | None
) -> tuple[Any, Any, Any, list[Any]]:
    """The project, the spec's graph, its splits and its metrics (the objective first)."""
    from soma.errors import ValidationError
    from soma.experiments import build_graph
    from soma.project import load_project

    project = load_project(project_dir)
    graph = build_graph(spec, project=project)
    metrics = list(project.metrics)
    if metric is not None:
        chosen = [m for m in metrics if m.name == metric]
        if not chosen:
            known = ", ".join(m.name for m in metrics)
            raise ValidationError(
                "--metric", f"the project computes no metric {metric!r} (soma.toml: {known})"
            )
        metrics = chosen + [m for m in metrics if m.name != metric]
    if direction is not None and Direction.parse(direction, "--direction") != metrics[0].direction:
        raise ValidationError(
            "--direction",
            f"soma.toml says {metrics[0].name} is {metrics[0].direction}d, got {direction!r}",
        )
    return project, graph, project.load_data(), metrics


def _load(ref: str, metric: str | None, direction: str | None) -> tuple[Any, Any, Any, str | None]:
    """The pipeline file, its data tuple, the metric and the direction to pass on."""
    from soma.errors import ValidationError
    from soma.pipeline_file import load_pipeline_file
    from soma.project import BUILTIN_METRICS

    pipeline = load_pipeline_file(ref)
    splits = pipeline.splits()
    data = (
        (splits.x_train, splits.y_train, splits.x_valid, splits.y_valid)
        if splits.has_validation
        else (splits.x_train, splits.y_train)
    )
    if metric is not None and metric in BUILTIN_METRICS:
        return pipeline, data, metric, direction
    if pipeline.metric is None:
        known = ", ".join(BUILTIN_METRICS)
        given = f"unknown metric {metric!r}; " if metric else ""
        raise ValidationError(
            "--metric",
            f"{given}expected one of {known}, or define metric() in {pipeline.path.name}",
        )
    label = metric or getattr(pipeline.metric, "__name__", "metric")
    return pipeline, data, {label: pipeline.metric}, direction or pipeline.direction


def _kb_path(project: Path, no_kb: bool) -> Path | None:
    from soma.study._inputs import resolve_project

    if no_kb:
        return None
    paths = resolve_project(project)
    assert paths is not None
    return paths.kb_path


@study_app.command("run")
def study_run(
    ref: StudyRef,
    metric: Metric = None,
    direction: DirectionOption = None,
    trials: Annotated[
        int | None, typer.Option("--trials", "-n", min=1, help="Trials to add.")
    ] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random or grid.")] = "tpe",
    pruner: Annotated[
        str | None, typer.Option("--pruner", help="median, percentile or percentile:P.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Start no trial after this many seconds.")
    ] = None,
    seed: Seed = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Trials run at once.")] = 1,
    name: Name = None,
    line: Annotated[
        str | None,
        typer.Option(
            "--line", help="Research line of a spec's trials (default: the project's name)."
        ),
    ] = None,
    project: ProjectDir = Path("."),
    no_kb: NoKb = False,
    embedder: Embedder = "default",
    as_json: AsJson = False,
) -> None:
    """Search the declared hyperparameters of a pipeline file, or of a spec over the
    project's data; trials land in PROJECT/.soma/."""
    from soma.errors import SomaError, StudyError
    from soma.study import Study

    check_embedder(embedder)
    out = console(stderr=as_json)
    kb = None
    try:
        if trials is None and timeout is None and sampler != "grid":
            trials = 20
        options: dict[str, Any] = {
            "sampler": sampler, "pruner": pruner, "n_trials": trials, "timeout": timeout,
            "seed": seed, "n_jobs": jobs,
        }  # fmt: skip
        if is_pipeline_file(ref):
            pipeline, data, metric_spec, direction = _load(ref, metric, direction)
            kb = _open_kb(project, no_kb, embedder)
            study = Study(
                pipeline.graph_factory, data=data, metric=metric_spec, direction=direction,
                name=name or f"{pipeline.path.stem}-{pipeline.name}", project=project, kb=kb,
                line=line, **options,
            )  # fmt: skip
        else:
            loaded, graph, splits, metrics = _load_spec(ref, project, metric, direction)
            kb = _open_kb(project, no_kb, embedder)
            study = Study(
                graph, data=splits, metric=metrics[0], name=name, project=loaded, kb=kb,
                line=line or loaded.name, record_metrics=metrics, **options,
            )  # fmt: skip
        out.print(f"[bold]study {study.name}[/]  {study.graph.summary()}", highlight=False)
        for key, text in study.space.items():
            out.print(f"  {key}: {text}", highlight=False)
        try:
            with _TrialProgress(out, study.name) as bar:
                result = study.run(progress=bar.update)
        except StudyError as exc:
            partial = getattr(exc, "result", None)
            if partial is not None and not as_json:
                print_trials(out, partial, limit=10)
            raise fail(error_text(exc)) from None
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    finally:
        if kb is not None:
            kb.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    print_trials(out, result, limit=10)
    print_summary(out, result)


def _open_kb(project: Path, no_kb: bool, embedder: str) -> Any:
    """The project's knowledge base with the chosen embedder, or None with ``--no-kb``."""
    if no_kb:
        return None
    from soma.knowledge import KnowledgeBase

    path = _kb_path(project, no_kb)
    return KnowledgeBase(path, embedder=embedder)


@study_app.command("show")
def study_show(
    name: Annotated[str, typer.Argument(help="The study's name.")],
    project: ProjectDir = Path("."),
    limit: Annotated[int, typer.Option("--limit", min=0, help="Trials to list (0: all).")] = 20,
    as_json: AsJson = False,
) -> None:
    """Show a stored study: best trial, counts, and its trials best first."""
    from soma.errors import SomaError
    from soma.study import load_result

    try:
        result = load_result(name, project=project)
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    out = console()
    print_trials(out, result, limit=limit or None)
    print_summary(out, result)


@study_app.command("report")
def study_report_command(
    name: Annotated[str, typer.Argument(help="The study's name (see soma study list).")],
    project: ProjectDir = Path("."),
    as_json: AsJson = False,
) -> None:
    """Write a Markdown report of a stored study with Optuna's views beside it (history,
    parameter importances, parallel coordinates, slice, contour) under
    PROJECT/.soma/reports/studies/NAME/."""
    from soma.errors import SomaError
    from soma.study import study_report

    try:
        report = study_report(name, project=project)
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    plots = {p.kind: str(p.path) if p.path else None for p in report.plots}
    if as_json:
        typer.echo(json.dumps({"path": str(report.path), "plots": plots}, indent=2))
        return
    out = console()
    out.print(f"study report written to {report.path}", highlight=False, soft_wrap=True)
    for p in report.plots:
        where = str(p.path) if p.path else f"not drawn: {p.reason}"
        out.print(f"  {p.title}: {where}", highlight=False, soft_wrap=True)


@study_app.command("list")
def study_list(project: ProjectDir = Path("."), as_json: AsJson = False) -> None:
    """List the studies stored in the project."""
    from rich.table import Table

    from soma.errors import SomaError
    from soma.study import list_studies

    try:
        studies = list_studies(project=project)
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    if as_json:
        typer.echo(json.dumps(studies, indent=2, default=str))
        return
    table = Table(title="studies", title_justify="left")
    for column in ("name", "direction", "trials", "best", "started"):
        table.add_column(column)
    for s in studies:
        best = "-" if s["best_value"] is None else f"{s['best_value']:.6g}"
        started = s["started"].strftime("%Y-%m-%d %H:%M") if s["started"] else "-"
        table.add_row(s["name"], ", ".join(s["directions"]), str(s["n_trials"]), best, started)
    console().print(table)


@pbt_app.command("run")
def pbt_run(
    ref: Ref,
    metric: Metric = None,
    direction: DirectionOption = None,
    population: Annotated[int, typer.Option("--population", min=2, help="Members.")] = 8,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Train/evaluate rounds.")] = 10,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps per round.")] = 1,
    node: Annotated[
        str | None, typer.Option("--node", help="The iterative node (default: the only one).")
    ] = None,
    fraction: Annotated[
        float, typer.Option("--fraction", help="Bottom/top fraction for exploit.")
    ] = 0.25,
    resample: Annotated[
        float, typer.Option("--resample", help="Probability to resample instead of perturb.")
    ] = 0.25,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Processes.")] = 1,
    seed: Seed = None,
    name: Name = None,
    project: ProjectDir = Path("."),
    no_kb: NoKb = False,
    as_json: AsJson = False,
) -> None:
    """Population-Based Training of the pipeline's iterative (last) node."""
    from soma.errors import SomaError
    from soma.pbt import PBT

    out = console(stderr=as_json)
    try:
        pipeline, data, metric_spec, direction = _load(ref, metric, direction)
        pbt = PBT(
            pipeline.graph_factory,
            data=data,
            metric=metric_spec,
            direction=direction,
            population=population,
            rounds=rounds,
            steps=steps,
            node=node,
            fraction=fraction,
            resample_probability=resample,
            workers=workers,
            seed=seed,
            name=name or f"{pipeline.path.stem}-{pipeline.name}-pbt",
            project=project,
            kb=_kb_path(project, no_kb),
        )
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    out.print(f"[bold]PBT {pbt.name}[/]  {pbt.graph.summary()}  (node {pbt.node})")
    try:
        with _RoundProgress(out, rounds) as bar:
            result = pbt.run(progress=bar.update)
    except SomaError as exc:
        raise fail(error_text(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    print_population(out, result)


# -- rendering ----------------------------------------------------------------------------


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def print_trials(console: Any, result: Any, limit: int | None) -> None:
    from rich.table import Table

    from soma.study._result import params_text

    sign = -Direction(result.directions[0]).sign  # best first
    order = sorted(
        result.trials,
        key=lambda t: (t.status != "ok", sign * (t.value if t.value is not None else 0), t.number),
    )
    shown = order if limit is None else order[:limit]
    title = f"trials of {result.name}" + (
        "" if len(shown) == len(order) else f" (best {len(shown)} of {len(order)})"
    )
    table = Table(title=title, title_justify="left")
    for column in ("#", "status", *result.metric_names, "params", "seconds", "cache"):
        table.add_column(column)
    colours = {"ok": "green", "pruned": "yellow", "failed": "red", "running": "cyan"}
    for t in shown:
        values = [_value(t.metrics.get(m)) for m in result.metric_names]
        detail = params_text(t.params)
        if t.error:
            detail = f"{detail}\n[red]{t.error}[/]"
        elif t.pruned_step is not None:
            detail = f"{detail}\n[yellow]pruned at step {t.pruned_step}[/]"
        cache = (
            f"{t.cache_hits}/{t.cache_hits + t.cache_misses}"
            if t.cache_hits + t.cache_misses
            else "-"
        )
        seconds = "-" if t.duration_s is None else f"{t.duration_s:.2f}"
        colour = colours.get(t.status, "white")
        table.add_row(str(t.number), f"[{colour}]{t.status}[/]", *values, detail, seconds, cache)
    console.print(table)


def print_summary(console: Any, result: Any) -> None:
    console.print(result.summary(), highlight=False, soft_wrap=True)
    if result.multi_objective:
        front = ", ".join(f"#{t.number}" for t in result.pareto_front)
        console.print(f"Pareto front: {front}", highlight=False)
    if result.storage and result.storage.startswith("sqlite:///"):
        console.print(
            f"[dim]open in optuna-dashboard: optuna-dashboard {result.storage}[/]", soft_wrap=True
        )


def print_population(console: Any, result: Any) -> None:
    from rich.table import Table

    from soma.study._result import params_text

    table = Table(title=f"population of {result.name}", title_justify="left")
    for column in ("member", result.metric, "params", "copied"):
        table.add_column(column)
    for m in result.population:
        copies = [f"r{e.round}<-{e.donor}" for e in result.lineage if e.member == m.id]
        text = params_text(m.params) + (f"\n[red]{m.error}[/]" if m.error else "")
        table.add_row(str(m.id), _value(m.score), text, " ".join(copies) or "-")
    console.print(table)
    schedule = "; ".join(f"r{s.round}: {params_text(s.params)}" for s in result.schedule)
    console.print(f"best schedule: {schedule}", highlight=False)
    console.print(result.summary(), highlight=False)
    if result.fallback_reason:
        console.print(f"[yellow]{result.fallback_reason}[/]")


class _TrialProgress:
    """Trial n/N and the best value so far."""

    def __init__(self, console: Any, name: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("trials", total=None, best="-", last="")

    def __enter__(self) -> _TrialProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    best_number: int | None = None

    def update(self, event: Any) -> None:
        trial = event.trial
        if trial.status == "ok" and trial.value is not None and trial.value == event.best_value:
            self.best_number = trial.number
        # The best value names its own trial; the last trial is labelled as such.
        best = _value(event.best_value)
        if self.best_number is not None and event.best_value is not None:
            best = f"{best} (#{self.best_number})"
        self.progress.update(
            self.task,
            total=event.total,
            completed=event.done,
            best=best,
            last=f"· last #{trial.number} {trial.status}",
        )


class _RoundProgress:
    def __init__(self, console: Any, rounds: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]rounds"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}  mean {task.fields[mean]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("rounds", total=rounds, best="-", mean="-")

    def __enter__(self) -> _RoundProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def update(self, event: Any) -> None:
        s = event.summary
        self.progress.update(
            self.task, completed=event.round + 1, best=_value(s.best), mean=_value(s.mean)
        )
