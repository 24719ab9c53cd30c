"""Figures of a research line: its trajectory, and Optuna's views of its parameters.

The trajectory is drawn for a paper, not for a debugger:

* the y-axis is set by the good results, not by a failed or chance-level trial: it spans the
  best value down to ``median - 3 * (best - median)`` (the better half's spread, mirrored for
  a metric to minimize), and a value beyond that is drawn on the axis edge as an open
  triangle, counted in the legend (so nothing is hidden, and nothing squashes the rest);
* failed experiments (no value) are crosses on the bottom edge at their place in time;
* x is the experiment's row in the report's summary table (every status, chronological), so
  a point can be looked up in the table;
* each pipeline family (the pipeline's steps without their parameters) has its own colour
  and marker, named in a legend below the axes;
* change points are dashed lines labelled ``C1``, ``C2``, ... above the axes, where no data
  is, staggered when close; the report lists what each one is; a faint line shows each
  segment's mean.

Optuna's views of a line (history, importances, parallel coordinates, slice, contour) are in
``soma.knowledge._optuna_plots``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soma.errors import ValidationError
from soma.knowledge._records import ChangePoint, Experiment, ResearchLine, TrajectoryPoint
from soma.vocabulary import Direction

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    pass

__all__ = [
    "OPTUNA_PLOTS",
    "PLOT_KINDS",
    "PlotOutcome",
    "axis_limits",
    "check_plot_kind",
    "pipeline_family",
    "plot_trajectory",
]

#: Optuna's views, by the name Soma gives them (report sections, MCP resource URIs).
OPTUNA_PLOTS: dict[str, str] = {
    "history": "optimisation history",
    "importances": "parameter importances",
    "parallel": "parallel coordinates",
    "slice": "slice plot",
    "contour": "contour plot",
}
#: Every figure a line has.
PLOT_KINDS: tuple[str, ...] = ("trajectory", *OPTUNA_PLOTS)
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_MARKERS = ("o", "s", "^", "D", "P", "X", "h")
DPI = 150


class PlotOutcome:
    """A figure that was drawn (``path``) or why it was not (``reason``)."""

    def __init__(self, kind: str, path: Path | None = None, reason: str = "") -> None:
        self.kind, self.path, self.reason = kind, path, reason
        self.note = ""  # which trials a drawing covers when not all of them

    @property
    def title(self) -> str:
        return OPTUNA_PLOTS.get(self.kind, self.kind)

    def __repr__(self) -> str:
        return f"PlotOutcome({self.kind!r}, path={self.path!r}, reason={self.reason!r})"


def check_plot_kind(kind: str, kinds: Sequence[str] = PLOT_KINDS) -> str:
    if kind not in kinds:
        raise ValidationError("kind", f"unknown plot {kind!r}; plots: {', '.join(kinds)}")
    return kind


def pipeline_family(exp: Experiment) -> str:
    """The pipeline's steps without their parameters: ``"StandardScale >> SVC"``.

    >>> pipeline_family(Experiment(name="a", pipeline_summary="Scale() >> SVC(C=1.0, k=(1, 2))"))
    'Scale >> SVC'
    """
    text = exp.pipeline_summary or ""
    while True:  # innermost parentheses first, so nested arguments go too
        stripped = re.sub(r"\([^()]*\)", "", text)
        if stripped == text:
            break
        text = stripped
    text = " ".join(text.split())
    return text or "(no pipeline recorded)"


def axis_limits(values: Sequence[float], direction: str) -> tuple[float, float]:
    """The value range worth drawing: the best value and the better half's spread, three
    times over, on the worse side (never past the data). A chance-level trial far below
    the rest does not set the axis; a steady climb keeps every point.

    >>> axis_limits([0.95, 0.96, 0.97, 0.98, 0.10], "maximize")
    (0.9, 0.98)
    >>> axis_limits([0.10, 0.12, 0.11, 5.0], "minimize")
    (0.1, 0.16)
    >>> axis_limits([1.0, 2.0, 3.0, 4.0], "maximize")
    (1.0, 4.0)
    """
    v = np.asarray(values, dtype=float)
    sign = Direction(direction).sign
    s = sign * v  # larger is better on this scale
    best, median = float(s.max()), float(np.median(s))
    spread = best - median
    if spread <= 0:  # half the values tie for the best: use their overall spread
        spread = 1.4826 * float(np.median(np.abs(s - median)))
    if spread <= 0:
        spread = 0.05 * max(abs(best), 1e-12)
    low = max(float(s.min()), median - 3.0 * spread)
    lo, hi = sorted((round(sign * low, 12), round(sign * best, 12)))
    return lo, hi


def _family_styles(families: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A colour and marker per family, the most frequent first; the rest share 'other'."""
    order = [f for f, _ in Counter(families).most_common()]
    keep = order if len(order) <= len(_PALETTE) else order[: len(_PALETTE) - 1]
    styles = {f: (_PALETTE[i], _MARKERS[i]) for i, f in enumerate(keep)}
    for f in order[len(keep) :]:
        styles[f] = (_PALETTE[-1], _MARKERS[-1])
    return styles


def _label_rows(xs: Sequence[float], span: float) -> list[int]:
    """Row (0 or 1, 2, ...) of each change-point label so that neighbours do not overlap."""
    rows: list[int] = []
    last_x: dict[int, float] = {}
    for x in xs:
        row = 0
        while row in last_x and x - last_x[row] < 0.06 * span:
            row += 1
        last_x[row] = x
        rows.append(row)
    return rows


def plot_trajectory(
    path: Path,
    line: ResearchLine,
    experiments: Sequence[Experiment],
    points: Sequence[TrajectoryPoint],
    cps: Sequence[ChangePoint],
) -> Figure:
    """Draw the line's trajectory (see the module docstring) into ``path`` (PNG); the
    figure is returned for a caller that wants to look at it (or save another format)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    row = {str(e.id): n for n, e in enumerate(experiments, 1)}  # the summary table's "#"
    by_id = {str(e.id): e for e in experiments}
    xs = np.array([row[p.experiment_id] for p in points], dtype=float)
    ys = np.array([p.value for p in points], dtype=float)
    maximize = Direction(line.direction) is Direction.MAXIMIZE
    lo, hi = axis_limits(ys, line.direction)
    pad = 0.06 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-9)
    bottom, top = lo - pad, hi + pad
    out_low, out_high = ys < lo, ys > hi  # beyond the range drawn: pinned to the edge
    families = [pipeline_family(by_id[p.experiment_id]) for p in points]
    styles = _family_styles(families)
    # The style every family past the palette shares; one legend entry, "other", for them.
    shared = (_PALETTE[-1], _MARKERS[-1]) if len(styles) > len(_PALETTE) else None

    fig = Figure(figsize=(8.0, 4.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.step(
        xs,
        [p.best_so_far for p in points],
        where="post",
        color="#2f2f2f",
        lw=1.6,
        zorder=2,
        label="best so far",
    )
    handles: list[Any] = []
    for family, (colour, marker) in styles.items():
        inside = np.array([f == family for f in families]) & ~out_low & ~out_high
        ax.scatter(xs[inside], ys[inside], s=26, c=colour, marker=marker, zorder=3, lw=0)
        label = family if styles.get(family) != shared else "other"
        if not any(h.get_label() == _short(label) for h in handles):
            handles.append(
                Line2D([], [], ls="", marker=marker, color=colour, ms=6, label=_short(label))
            )
    for mask, y, marker in ((out_low, bottom, "v"), (out_high, top, "^")):
        if mask.any():
            colours = [styles[f][0] for f, m in zip(families, mask, strict=True) if m]
            ax.scatter(
                xs[mask],
                np.full(mask.sum(), y),
                s=40,
                marker=marker,
                facecolors="none",
                edgecolors=colours,
                lw=1.2,
                zorder=4,
                clip_on=False,
            )
            worst = ys[mask].min() if marker == "v" else ys[mask].max()
            side = "below" if marker == "v" else "above"
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    marker=marker,
                    mfc="none",
                    color="#555555",
                    label=f"{mask.sum()} {side} the axis (to {worst:.4g})",
                )
            )
    failed = [row[str(e.id)] for e in experiments if e.status == "failed"]
    if failed:
        y_failed = bottom if maximize else top
        ax.scatter(
            failed,
            [y_failed] * len(failed),
            marker="x",
            s=36,
            c="#c44e52",
            lw=1.3,
            zorder=4,
            clip_on=False,
        )
        handles.append(
            Line2D([], [], ls="", marker="x", color="#c44e52", label=f"{len(failed)} failed")
        )
    # Segment means between change points, and the change points themselves.
    cuts = [row[cp.experiment_id] - 0.5 for cp in cps]
    bounds = [0.5, *cuts, len(experiments) + 0.5]
    seg_start = [0, *[cp.index for cp in cps], len(points)]
    if cps:
        for i in range(len(bounds) - 1):
            seg = ys[seg_start[i] : seg_start[i + 1]]
            mean = float(np.clip(seg.mean(), bottom, top)) if seg.size else None
            if mean is not None:
                ax.hlines(mean, bounds[i], bounds[i + 1], colors="#999999", lw=1, ls=":")
        span = max(len(experiments), 1)
        for n, (x, level) in enumerate(zip(cuts, _label_rows(cuts, span), strict=True), 1):
            ax.axvline(x, color="#c44e52", ls="--", lw=1, zorder=1)
            ax.annotate(
                f"C{n}",
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 2 + 9 * level),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                color="#c44e52",
                annotation_clip=False,
            )
        handles.append(Line2D([], [], color="#c44e52", ls="--", lw=1, label="change point (Cn)"))
    best_id = points[-1].best_experiment_id
    best_i = next(i for i, p in enumerate(points) if p.experiment_id == best_id)
    ax.scatter([xs[best_i]], [ys[best_i]], s=150, marker="*", c="#f2c14e", ec="k", lw=0.6, zorder=5)
    late = xs[best_i] > (len(experiments) + 1) / 2
    ax.annotate(
        f"best {ys[best_i]:.4g}",
        (xs[best_i], ys[best_i]),
        textcoords="offset points",
        xytext=(-8, -14 if maximize else 8) if late else (8, -14 if maximize else 8),
        ha="right" if late else "left",
        fontsize=7,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.85, "lw": 0},
    )
    handles.insert(0, Line2D([], [], color="#2f2f2f", lw=1.6, label="best so far"))
    ax.set_ylim(bottom, top)
    ax.set_xlim(0.5, len(experiments) + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("experiment (# in the summary table, chronological)")
    ax.set_ylabel(f"{line.metric} ({line.direction})")
    ax.set_title(f"{line.name}: {line.metric}", loc="left", fontsize=10, pad=16 if cps else 6)
    ax.grid(alpha=0.25, lw=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(3, len(handles)),
        fontsize=7,
        frameon=False,
    )
    fig.savefig(path)
    return fig


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
