"""``soma run FILE.py[:NAME]``: fit and forward a pipeline file, with progress per node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import ProjectDir, fail, state_paths


def default_cache_dir(project: Path) -> Path:
    return state_paths(project).cache_dir


@app.command("run")
def run(
    ref: Annotated[str, typer.Argument(help="Pipeline file, FILE.py or FILE.py:NAME.")],
    project: ProjectDir = Path("."),
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Cache folder (default PROJECT/.soma/cache).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Compute every node.")] = False,
    max_workers: Annotated[
        int | None, typer.Option("--max-workers", min=1, help="Threads for parallel branches.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Fit the pipeline on the training data, run it on the validation data, print the metric."""
    from rich.console import Console

    from soma.cache import Cache
    from soma.errors import ExecutionError, SomaError
    from soma.experiments import EvaluationError, MetricSpec, evaluate
    from soma.pipeline_file import load_pipeline_file

    console = Console(stderr=as_json)
    try:
        pipeline = load_pipeline_file(ref)
        cache = None if no_cache else Cache(cache_dir or default_cache_dir(project))
        graph = pipeline.graph_factory(cache=cache, max_workers=max_workers)
        graph.compile()
        splits = pipeline.splits()
    except SomaError as exc:
        raise fail(str(exc)) from None
    console.print(f"[bold]{pipeline.path.name}:{pipeline.name}[/]  {graph.summary()}")
    metrics = []
    if pipeline.metric is not None:
        name = getattr(pipeline.metric, "__name__", "metric")
        metrics = [MetricSpec(name, pipeline.direction, pipeline.metric)]
    try:
        with _NodeProgress(console, graph) as progress:
            evaluation = evaluate(
                graph,
                splits,
                metrics,
                progress=lambda stage: stage != "metric" and progress.phase(stage, len(graph)),
            )
    except EvaluationError as failure:
        exc = failure.cause
        if isinstance(exc, ExecutionError):
            cause = exc.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            raise fail(f"node {exc.node!r} failed during {exc.phase}: {detail}") from None
        raise fail(f"{pipeline.path}: {exc}") from None
    except SomaError as exc:
        raise fail(str(exc)) from None
    fit_report, forward_report = evaluation.reports
    score = evaluation.metrics[metrics[0].name] if metrics else None
    summary = _summary(pipeline, graph, fit_report, forward_report, score, splits, cache)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print_table(console, fit_report, forward_report)
    console.print(
        f"cache: {summary['cache_hits']} hits, {summary['cache_misses']} computed"
        + (f"  ({cache.path})" if cache is not None else "  (off)")
    )
    if score is not None:
        split = "validation" if splits.has_validation else "training"
        metric = getattr(pipeline.metric, "__name__", "metric")
        console.print(
            f"[bold]{metric}[/] on {split} data: [bold green]{score:.6g}[/] ({pipeline.direction})"
        )


def _summary(
    pipeline: Any, graph: Any, fit: Any, forward: Any, score: Any, splits: Any, cache: Any
) -> dict[str, Any]:
    nodes = {}
    for name in fit.nodes:
        f, b = fit.nodes[name], forward.nodes.get(name)
        nodes[name] = {
            "fit": {"status": f.status, "cache_hit": f.cache_hit, "seconds": f.duration_s},
            "forward": None
            if b is None
            else {"status": b.status, "cache_hit": b.cache_hit, "seconds": b.duration_s},
        }
    return {
        "pipeline": f"{pipeline.path}:{pipeline.name}",
        "summary": graph.summary(),
        "fingerprint": graph.fingerprint(),
        "metric": getattr(pipeline.metric, "__name__", None) if pipeline.metric else None,
        "score": score,
        "direction": pipeline.direction,
        "validation_split": splits.has_validation,
        "data_fingerprint": splits.fingerprint,  # what an experiment on this data records
        "cache_dir": str(cache.path) if cache is not None and cache.path else None,
        "cache_hits": fit.cache_hits + forward.cache_hits,
        "cache_misses": fit.cache_misses + forward.cache_misses,
        "seconds": {"fit": fit.duration_s, "forward": forward.duration_s},
        "nodes": nodes,
    }


def _print_table(console: Any, fit: Any, forward: Any) -> None:
    from rich.table import Table

    table = Table(title="nodes", title_justify="left")
    for column in ("node", "fit", "forward"):
        table.add_column(column)

    def cell(report: Any) -> str:
        if report is None:
            return "-"
        if report.status == "cached":
            return f"[cyan]cache hit[/] {report.duration_s * 1e3:.1f} ms"
        if report.status == "ok":
            return f"computed {report.duration_s * 1e3:.1f} ms"
        return report.status

    for name in fit.nodes:
        table.add_row(name, cell(fit.nodes[name]), cell(forward.nodes.get(name)))
    console.print(table)


class _NodeProgress:
    """A rich progress bar per phase, advanced by the graph's node events."""

    def __init__(self, console: Any, graph: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[node]}"),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self._hits: set[tuple[str, str | None]] = set()
        graph.on_event(self._on_event)

    def __enter__(self) -> _NodeProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def phase(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(name, total=total, node="")

    def _on_event(self, event: Any) -> None:
        if self.task is None:
            return
        kind = event.kind
        if kind == "node_started":
            self.progress.update(self.task, node=event.node)
        elif kind == "node_cache_hit":
            self._hits.add((event.run_id, event.node))
        elif kind in ("node_finished", "node_failed") and event.iteration in (None, 0):
            tag = " (cache)" if (event.run_id, event.node) in self._hits else ""
            self.progress.update(self.task, advance=1, node=f"{event.node}{tag}")
        elif kind in ("run_finished", "run_failed"):
            total = self.progress.tasks[self.task].total
            self.progress.update(self.task, completed=total, node="")
