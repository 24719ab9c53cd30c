"""Pictures of a stored study: Optuna's views and a Markdown report holding them.

``soma study report NAME`` and the MCP resource ``soma://studies/{name}/plots/{kind}`` come
here. The views are Optuna's matplotlib ones (optimisation history, parameter importances,
parallel coordinates, slice, contour), drawn by :func:`soma.knowledge.draw_optuna_plot` on
the study as stored, so they match what optuna-dashboard shows for the same storage. A
study with several objectives is drawn on its first (its trials' first value).

>>> from soma.study import study_report   # doctest: +SKIP
>>> study_report("svc", project="my-research").path   # doctest: +SKIP
PosixPath('my-research/.soma/reports/studies/svc/svc-study.md')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soma.errors import StudyError
from soma.knowledge import OPTUNA_PLOTS, PlotOutcome, draw_optuna_plot
from soma.knowledge._line_report import plot_markdown
from soma.knowledge._plots import check_plot_kind
from soma.study._result import load_stored, metric_names_of

__all__ = ["StudyReport", "draw_study_plot", "study_folder", "study_report"]


@dataclass
class StudyReport:
    """A written study report: the Markdown, where it is, and each view drawn or not."""

    name: str
    markdown: str
    path: Path
    plots: list[PlotOutcome] = field(default_factory=list)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "study"


def _open(name: str, project: Any, storage: Any) -> tuple[Any, Path]:
    """The stored Optuna study and the folder its pictures go to."""
    from soma.study._inputs import resolve_project, resolve_storage

    paths = resolve_project(project)
    url = resolve_storage(storage, paths)
    if url is None:
        raise StudyError("a study's plots need its storage or its project")
    study = load_stored(name, url)
    if paths is not None:
        root = paths.kb_path.parent / "reports"
    elif isinstance(url, str) and url.startswith("sqlite:///"):
        root = Path(url.removeprefix("sqlite:///")).parent / "reports"
    else:
        raise StudyError("say where the pictures go: pass project= (or out_dir=)")
    return study, study_folder(root, name)


def study_folder(reports_root: Path, name: str) -> Path:
    """Where a study's report and pictures live: ``<reports_root>/studies/<slug>/``."""
    return Path(reports_root) / "studies" / _slug(name)


def _target(study: Any) -> tuple[Any, str]:
    name = metric_names_of(study)[0]
    if len(study.directions) == 1:
        return None, name
    return (lambda t: t.values[0]), name


def draw_study_plot(
    name: str,
    kind: str,
    *,
    project: Any = None,
    storage: Any = None,
    out_dir: Path | None = None,
) -> PlotOutcome:
    """Draw one of Optuna's views of the stored study ``name`` (``kind`` one of
    :data:`soma.knowledge.OPTUNA_PLOTS`): the PNG's path, or why it could not be drawn."""
    check_plot_kind(kind, tuple(OPTUNA_PLOTS))
    study, folder = _open(name, project, storage)
    folder = Path(out_dir) if out_dir is not None else folder
    folder.mkdir(parents=True, exist_ok=True)
    target, target_name = _target(study)
    path = folder / f"{_slug(name)}-{kind}.png"
    return draw_optuna_plot(study, kind, path, target_name=target_name, target=target)


def study_report(
    name: str, *, project: Any = None, storage: Any = None, out_dir: Path | None = None
) -> StudyReport:
    """Write ``<slug>-study.md`` with the study's best trial and Optuna's five views beside
    it (see :func:`study_folder`)."""
    import optuna

    study, folder = _open(name, project, storage)
    folder = Path(out_dir) if out_dir is not None else folder
    folder.mkdir(parents=True, exist_ok=True)
    target, metric = _target(study)
    slug = _slug(name)
    plots = []
    for kind in OPTUNA_PLOTS:
        path = folder / f"{slug}-{kind}.png"
        path.unlink(missing_ok=True)  # a view that cannot be drawn now leaves no stale file
        plots.append(draw_optuna_plot(study, kind, path, target_name=metric, target=target))
    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    direction = ", ".join(d.name.lower() for d in study.directions)
    md = [
        f"# Study report: {name}",
        "",
        f"- Objective: **{metric}** ({direction})",
        f"- Trials: {len(trials)} ({states[optuna.trial.TrialState.COMPLETE]} complete, "
        f"{states[optuna.trial.TrialState.PRUNED]} pruned, "
        f"{states[optuna.trial.TrialState.FAIL]} failed)",
        f"- Generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC",
        "",
        "## Best trial",
        "",
        *_best(study, metric),
        "",
        "## Views",
        "",
        "Optuna's matplotlib views of the stored study (what optuna-dashboard shows for the "
        "same storage; `soma dashboard` starts it). Importances are fANOVA's, seeded (a "
        "seeded random forest's impurity decrease when a categorical has over eight choices).",
        "",
        *plot_markdown(plots),
    ]
    markdown = "\n".join(md)
    path = folder / f"{slug}-study.md"
    path.write_text(markdown, encoding="utf-8")
    return StudyReport(name=name, markdown=markdown, path=path, plots=plots)


def _best(study: Any, metric: str) -> list[str]:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return ["No complete trial yet."]
    if len(study.directions) > 1:
        return [f"{len(study.best_trials)} trials on the Pareto front; see the history below."]
    best = study.best_trial
    experiment = best.user_attrs.get("experiment_id")
    source = f", experiment `{experiment}`" if experiment else ""
    out = [f"**{metric} {best.value:.4g}** — trial {best.number}{source}.", ""]
    if best.params:
        out += ["| param | value |", "|---|---|"]
        for key, value in sorted(best.params.items()):
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            out.append(f"| {key} | `{text}` |")
    return out
