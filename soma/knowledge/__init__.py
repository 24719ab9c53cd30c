"""Soma's knowledge base: every experiment remembered, searchable by meaning, analysed per line.

>>> from soma.knowledge import KnowledgeBase, Experiment, HashingEmbedder
>>> kb = KnowledgeBase(":memory:", embedder=HashingEmbedder())   # "default": all-MiniLM-L6-v2
>>> _ = kb.create_line("digits", metric="accuracy", direction="maximize")
>>> _ = kb.record(Experiment(name="baseline", line="digits", metrics={"accuracy": 0.91}))
>>> [hit.experiment.name for hit in kb.query("baseline", line="digits", where="accuracy > 0.9")]
['baseline']

Storage is SQLite (WAL mode, safe for several processes); semantic search a vector index beside
the file: FAISS (``backend="faiss"``, the default) or ChronosVector's temporal index
(``backend="chronos"``, Python 3.12 and ``soma-research[chronos]``: time windows searched inside
the index); analytics direction-aware (trend, change points, promising lines, a line's
hypothesis trajectory with its direction changes, the novelty of a proposed hypothesis);
reports Markdown with a trajectory plot.
"""

from __future__ import annotations

from soma.knowledge._analytics import classify_trend, detect_change_points, noise_scale
from soma.knowledge._embed import Embedder, HashingEmbedder, MiniLMEmbedder, resolve_embedder
from soma.knowledge._kb import KnowledgeBase
from soma.knowledge._line_report import draw_line_plot, latest_report, report_folder
from soma.knowledge._line_summary import LineSummary, summarize_line
from soma.knowledge._optuna_plots import draw_optuna_plot
from soma.knowledge._paths import default_kb_path
from soma.knowledge._plots import OPTUNA_PLOTS, PLOT_KINDS, PlotOutcome
from soma.knowledge._records import (
    ChangePoint,
    Experiment,
    JournalEntry,
    PromisingLine,
    Report,
    ResearchLine,
    SearchHit,
    TrajectoryPoint,
    Trend,
    new_experiment_id,
)
from soma.knowledge._store import SCHEMA_VERSION
from soma.knowledge._temporal import (
    DirectionChange,
    HypothesisPoint,
    HypothesisTrajectory,
    Novelty,
    detect_direction_changes,
)
from soma.knowledge._where import WhereClause, parse_where
from soma.knowledge._writes import UnknownLineError

__all__ = [
    "OPTUNA_PLOTS",
    "PLOT_KINDS",
    "SCHEMA_VERSION",
    "ChangePoint",
    "DirectionChange",
    "Embedder",
    "Experiment",
    "HashingEmbedder",
    "HypothesisPoint",
    "HypothesisTrajectory",
    "JournalEntry",
    "KnowledgeBase",
    "LineSummary",
    "MiniLMEmbedder",
    "Novelty",
    "PlotOutcome",
    "PromisingLine",
    "Report",
    "ResearchLine",
    "SearchHit",
    "TrajectoryPoint",
    "Trend",
    "UnknownLineError",
    "WhereClause",
    "classify_trend",
    "default_kb_path",
    "detect_change_points",
    "detect_direction_changes",
    "draw_line_plot",
    "draw_optuna_plot",
    "latest_report",
    "new_experiment_id",
    "noise_scale",
    "parse_where",
    "report_folder",
    "resolve_embedder",
    "summarize_line",
]
