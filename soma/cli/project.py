"""``soma init`` and ``soma project ...``: scaffold, inspect and check research projects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import AsJson, ProjectDir, fail

project_app = typer.Typer(
    name="project",
    help="Inspect a research project: its settings, filters, data and pipeline specs.",
    no_args_is_help=True,
)
app.add_typer(project_app)


def _load(directory: Path) -> Any:
    from soma.errors import ProjectError
    from soma.project import load_project

    try:
        return load_project(directory)
    except ProjectError as exc:
        raise fail(str(exc)) from None


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")] = Path("."),
    example: Annotated[
        str, typer.Option("--example", "-e", help="Dataset: digits, wine or breast_cancer.")
    ] = "digits",
    name: Annotated[
        str | None, typer.Option("--name", help="Project name (default: the folder's name).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing project files.")
    ] = False,
) -> None:
    """Create a research project that runs offline at once (scikit-learn toy data)."""
    from rich.console import Console
    from rich.markup import escape

    from soma.errors import ProjectError
    from soma.project import init_project, load_project

    try:
        root = init_project(directory, example=example, name=name, force=force)
        project = load_project(root)
        catalog = project.discover_filters()
    except ProjectError as exc:
        raise fail(str(exc)) from None
    console = Console()
    console.print(f"[bold green]Created[/] project {escape(repr(project.name))} in {root}")
    console.print(f"  soma.toml   metric {project.metric.name} ({project.metric.direction})")
    console.print(f"  data.py     scikit-learn {example} dataset, train / valid / test")
    console.print(f"  filters/    {', '.join(catalog.names())}")
    _print_errors(console, catalog.errors)
    console.print("Next:")
    console.print(f"  soma project show --project {directory}")
    console.print(
        f'  soma project spec "StandardScale() >> LogReg(C=1.0)" --run --project {directory}'
    )


@project_app.command("show")
def show(
    project_dir: ProjectDir = Path("."),
    data: Annotated[
        bool, typer.Option("--data/--no-data", help="Also load the data splits.")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Settings, metrics, filters (and broken filter files) and data splits of a project."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from soma.errors import ProjectError

    project = _load(project_dir)
    catalog = project.discover_filters()
    splits = None
    if data:
        try:
            splits = project.load_data()
        except ProjectError as exc:
            raise fail(str(exc)) from None
    if as_json:
        out = {
            "name": project.name,
            "root": str(project.root),
            "config": project.config.model_dump(),
            "metrics": [{"name": m.name, "direction": m.direction} for m in project.metrics],
            "paths": {
                "filters": str(project.filters_dir),
                "kb": str(project.kb_path),
                "cache": str(project.cache_dir),
                "optuna": str(project.optuna_path),
            },
            **catalog.to_dict(),
            "data": None
            if splits is None
            else {"splits": splits.describe(), "fingerprint": splits.fingerprint},
        }
        typer.echo(json.dumps(out, indent=2))
        return
    console = Console()
    console.print(f"[bold]{escape(project.name)}[/]  {escape(str(project.root))}")
    if project.config.description:
        console.print(escape(project.config.description))
    metrics = ", ".join(f"{m.name} ({m.direction})" for m in project.metrics)
    console.print(f"metrics: {metrics}   [dim](primary first)[/]")
    agent = project.config.agent
    console.print(
        f"agent: planner {agent.planner}, max {agent.max_experiments} experiments, "
        f"budget ${agent.budget_usd:g}, seed {agent.seed}, approve {agent.approve}"
    )
    if splits is not None:
        console.print(f"data: {splits.describe()}  [dim]{splits.fingerprint[:12]}[/]")
    console.print(_filters_table(catalog, Table))
    _print_errors(console, catalog.errors)


def _filters_table(catalog: Any, table_cls: Any) -> Any:
    from rich.markup import escape

    table = table_cls(title=f"{len(catalog)} filters")
    for column in ("name", "file", "params", "description"):
        table.add_column(column)
    for name in catalog.names():
        info = catalog.filters[name]
        table.add_row(*(escape(t) for t in (name, info.file, _params_text(info.params), info.doc)))
    return table


def _params_text(params: dict[str, Any]) -> str:
    parts = []
    for name, decl in params.items():
        if isinstance(decl, dict) and decl.get("type") in ("int", "float"):
            log = " log" if decl.get("log") else ""
            parts.append(f"{name}={decl['default']} [{decl['low']}, {decl['high']}{log}]")
        elif isinstance(decl, dict) and decl.get("type") == "choice":
            parts.append(f"{name}={decl['default']!r} {{{', '.join(map(repr, decl['choices']))}}}")
        else:
            parts.append(f"{name}={decl!r}")
    return "\n".join(parts)


def _print_errors(console: Any, errors: dict[str, str]) -> None:
    from rich.markup import escape

    for message in errors.values():
        console.print(f"[bold red]broken[/] {escape(message)}", highlight=False)


@project_app.command("filters")
def filters(project_dir: ProjectDir = Path("."), as_json: AsJson = False) -> None:
    """List the filters the project's filters folder defines, with their search spaces."""
    from rich.console import Console
    from rich.table import Table

    catalog = _load(project_dir).discover_filters()
    if as_json:
        typer.echo(json.dumps(catalog.to_dict(), indent=2))
    else:
        console = Console()
        console.print(_filters_table(catalog, Table))
        _print_errors(console, catalog.errors)
    if catalog.errors:
        raise typer.Exit(1)


@project_app.command("spec")
def spec(
    text: Annotated[str, typer.Argument(help='Expression ("A() >> B(x=1)") or JSON spec.')],
    project_dir: ProjectDir = Path("."),
    run: Annotated[bool, typer.Option("--run", help="Fit on train and score on valid.")] = False,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="With --run: use the project's cache.")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Check a pipeline spec; print its canonical forms (and, with --run, its scores)."""
    from soma.errors import ProjectError, SomaError
    from soma.project import spec_to_json, spec_to_string

    project = _load(project_dir)
    try:
        expr = project.parse_spec(text)
    except ProjectError as exc:
        raise fail(str(exc)) from None
    out: dict[str, Any] = {"expression": spec_to_string(expr), "json": spec_to_json(expr)}
    if run:
        from soma import Cache, Graph

        try:
            splits = project.load_data()
            out["data_fingerprint"] = splits.fingerprint  # what experiments record
            graph = Graph.somatize(expr, cache=Cache(project.cache_dir) if cache else None)
            graph.fit(*splits.train)
            fit_run = graph.last_run
            predicted = graph.forward(splits.valid[0])
            out["valid"] = project.score(splits.valid[1], predicted)
            runs = [r for r in (fit_run, graph.last_run) if r is not None]
            if runs:  # fit and validation passes together, as run_pipeline counts them
                out["cache_hits"] = sum(r.cache_hits for r in runs)
                out["cache_misses"] = sum(r.cache_misses for r in runs)
        except SomaError as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(out["expression"])
    typer.echo(json.dumps(out["json"]))
    for metric, value in out.get("valid", {}).items():
        typer.echo(f"valid {metric}: {value:.4f}")
    if "cache_hits" in out:
        typer.echo(f"cache: {out['cache_hits']} hits, {out['cache_misses']} misses")
