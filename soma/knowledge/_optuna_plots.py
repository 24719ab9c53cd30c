"""Optuna's matplotlib views of a research line or a stored study.

The views (optimisation history, parameter importances, parallel coordinates, slice,
contour) are drawn from an in-memory Optuna study made of the line's experiments
(:func:`line_study`), or from a stored study (``soma.study.study_plots``), by
:func:`draw_optuna_plot`. Optuna draws through pyplot: each figure is made with interactive
mode off, saved and closed, so making a report never opens a window or leaks figures in a
long-running server, and what cannot be drawn comes back as a reason, not an exception.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soma.knowledge._analytics import scored
from soma.knowledge._plots import DPI, OPTUNA_PLOTS, PlotOutcome, check_plot_kind, pipeline_family
from soma.knowledge._records import Experiment

if TYPE_CHECKING:
    import optuna

__all__ = ["draw_optuna_plot", "line_study"]

#: Parameters drawn in the slice, parallel-coordinate (at most) and contour (pairs of) plots:
#: the most important first. A contour of n parameters is an n x n grid.
_MAX_PARAMS = 6
_MAX_CONTOUR_PARAMS = 3
_PYPLOT = threading.Lock()


def _param_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _distribution(values: Sequence[Any]) -> Any:
    """An Optuna distribution covering ``values`` (None when they carry no information)."""
    import optuna.distributions as d

    distinct = set(values)
    if len(distinct) < 2:
        return None
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values) and all(math.isfinite(v) for v in numbers):
        low, high = min(numbers), max(numbers)
        log = low > 0 and high / low >= 100
        if all(isinstance(v, int) for v in numbers):
            return d.IntDistribution(int(low), int(high), log=log)
        return d.FloatDistribution(float(low), float(high), log=log)
    return d.CategoricalDistribution(sorted(distinct, key=lambda v: (str(type(v)), str(v))))


def line_study(
    experiments: Sequence[Experiment], metric: str, direction: str, *, name: str = "line"
) -> optuna.Study:
    """An in-memory Optuna study of the line's experiments: one complete trial per
    successful experiment with ``metric`` (its params, and its pipeline family when the
    line has several), one failed trial per failed experiment, in order. Parameters with a
    single value are left out (they explain nothing)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    ok = scored(experiments, metric)
    families = {e.id: pipeline_family(e) for e in ok}
    rows: list[tuple[Experiment, dict[str, Any]]] = []
    for e in experiments:
        params = {k: _param_value(v) for k, v in e.params.items()}
        if len(set(families.values())) > 1:
            params["pipeline"] = pipeline_family(e)
        rows.append((e, params))
    names = sorted({k for e, p in rows if e in ok for k in p})
    dists = {}
    for key in names:
        dist = _distribution([p[key] for e, p in rows if e in ok and key in p])
        if dist is not None:
            dists[key] = dist
    with _quiet_optuna():  # no "new study created" log, no "experimental" warning
        study = optuna.create_study(direction=direction, study_name=name)
        trials = []
        for e, params in rows:
            kept = {k: v for k, v in params.items() if k in dists and _contains(dists[k], v)}
            value = e.metrics.get(metric)
            if e.status == "ok" and value is not None and math.isfinite(value):
                state, values = TrialState.COMPLETE, [value]
            elif e.status == "failed":
                state, values = TrialState.FAIL, None
            else:
                continue
            trials.append(
                create_trial(
                    state=state,
                    values=values,
                    params=kept,
                    distributions={k: dists[k] for k in kept},
                    user_attrs={"experiment_id": str(e.id)},
                )
            )
        study.add_trials(trials)
    return study


def _contains(dist: Any, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's own warnings off: what cannot be drawn is said in the report instead."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the matplotlib views are "experimental"
            yield
    finally:
        optuna.logging.set_verbosity(level)


#: fANOVA marginalises a categorical's one-hot columns jointly: its cost grows exponentially
#: with the number of choices (a line of 20 pipeline families took ~7 minutes for 40 trials).
_FANOVA_MAX_CHOICES = 8


def _importance_evaluator(study: optuna.Study, params: Sequence[str] | None = None) -> Any:
    """fANOVA (seeded) unless a categorical among ``params`` (default: all) has more than
    :data:`_FANOVA_MAX_CHOICES` choices; then the mean decrease in impurity of a seeded
    random forest, which costs about a second."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    wide = any(
        isinstance(dist, CategoricalDistribution) and len(dist.choices) > _FANOVA_MAX_CHOICES
        for t in study.get_trials(deepcopy=False)
        for name, dist in t.distributions.items()
        if params is None or name in params
    )
    if wide:
        return optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0)
    return optuna.importance.FanovaImportanceEvaluator(seed=0)


def _param_group(study: optuna.Study, target: Any) -> tuple[optuna.Study, list[str], str]:
    """The trials and parameters that slice, parallel-coordinate and contour plots can draw
    together: the largest group of complete trials sharing one parameter set (on a line of
    several pipeline families, the commonest family's; a stored study's trials all share
    theirs), its parameters that vary, most important first (fANOVA, seeded, where Optuna
    can compute it; then by name), and a note saying which trials these are."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    groups = Counter(frozenset(t.params) for t in complete)
    shared, size = groups.most_common(1)[0]
    members = [t for t in complete if frozenset(t.params) == shared]
    varying = {k for k in shared if len({repr(t.params[k]) for t in members}) > 1}
    note = ""
    if size < len(complete):
        with _quiet_optuna():
            sub = optuna.create_study(directions=study.directions, study_name=study.study_name)
            sub.add_trials(members)
        family = {str(t.params.get("pipeline", "")) for t in members} - {""}
        what = f" ({family.pop()})" if len(family) == 1 else ""
        note = f"the {size} of {len(complete)} complete trials sharing one parameter set{what}"
        study = sub
    try:
        with _quiet_optuna():
            imp = optuna.importance.get_param_importances(
                study,
                target=target,
                params=sorted(varying) or None,
                evaluator=_importance_evaluator(study, sorted(varying) or None),
            )
        order = [k for k in imp if k in varying]
    except (ValueError, RuntimeError):
        order = []
    return study, order + sorted(varying - set(order)), note


def draw_optuna_plot(
    study: optuna.Study,
    kind: str,
    path: Path,
    *,
    target_name: str,
    target: Any = None,
) -> PlotOutcome:
    """One of Optuna's matplotlib views of ``study`` into ``path`` (PNG), or why not.

    ``target`` picks the value of a multi-objective trial (``lambda t: t.values[0]``)."""
    import optuna
    from optuna.visualization import matplotlib as ovm

    check_plot_kind(kind, tuple(OPTUNA_PLOTS))
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return PlotOutcome(kind, reason="no complete trial yet")
    if kind != "history" and len(complete) < 2:
        return PlotOutcome(kind, reason="needs at least 2 complete trials")
    if kind == "importances" and not any(t.params for t in complete):
        return PlotOutcome(kind, reason="no parameter varies")
    common: dict[str, Any] = {"target_name": target_name}
    if target is not None:
        common["target"] = target
    note = ""
    if kind in ("slice", "parallel", "contour"):
        study, ranked, note = _param_group(study, target)
        if not ranked:
            return PlotOutcome(kind, reason="no parameter varies")
        if kind == "contour" and len(ranked) < 2:
            return PlotOutcome(kind, reason="needs 2 parameters varying in the same trials")
        params = ranked[: _MAX_CONTOUR_PARAMS if kind == "contour" else _MAX_PARAMS]
    draw = {
        "history": lambda: ovm.plot_optimization_history(study, **common),
        "importances": lambda: ovm.plot_param_importances(
            study, evaluator=_importance_evaluator(study), **common
        ),
        "parallel": lambda: ovm.plot_parallel_coordinate(study, params=params, **common),
        "slice": lambda: ovm.plot_slice(study, params=params, **common),
        "contour": lambda: ovm.plot_contour(study, params=params, **common),
    }[kind]
    outcome = _save_pyplot(kind, path, draw)
    outcome.note = note
    return outcome


def _save_pyplot(kind: str, path: Path, draw: Any) -> PlotOutcome:
    """Run an Optuna drawing (it uses pyplot) without touching the caller's figures or
    backend state, save it and close it."""
    import matplotlib.pyplot as plt

    # pyplot's figure registry and rc settings are process-wide: one drawing at a time (an
    # MCP server draws resources on worker threads).
    with _PYPLOT, _quiet_optuna(), plt.ioff(), plt.rc_context({"figure.dpi": 100}):
        before = set(plt.get_fignums())
        try:
            drawn = draw()
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
            return PlotOutcome(kind, reason=f"Optuna could not draw it: {exc}")
        first = np.ravel(np.asarray(drawn, dtype=object))[0]
        fig = first.figure
        try:
            n = int(np.asarray(drawn, dtype=object).size)
            if n > 1:  # a grid (slice, contour): room for each panel
                width, height = fig.get_size_inches()
                fig.set_size_inches(max(width, 3.2 * min(n, 4)), max(height, 3.0 * max(1, n // 4)))
            fig.savefig(path, dpi=DPI, bbox_inches="tight")
        finally:
            plt.close(fig)
    return PlotOutcome(kind, path=path)
