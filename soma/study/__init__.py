"""Hyperparameter studies over Soma graphs, on Optuna.

>>> from soma.study import Study, report
>>> Study  # doctest: +ELLIPSIS
<class 'soma.study._study.Study'>

``Study(graph, data=..., metric=..., ...).run()`` searches the graph's declared spaces
(TPE, random or grid; median / percentile pruning; several objectives give a Pareto
front), shares one cache across trials, keeps trials in Optuna storage (continued by
name) and records each trial as an experiment in the knowledge base. Filters report
intermediate values with :func:`report`; a pruned trial stops with :class:`Pruned`.
"""

from __future__ import annotations

from soma.study._intermediate import Pruned, TrialInfo, current_trial, report
from soma.study._plots import StudyReport, draw_study_plot, study_report
from soma.study._result import (
    StudyProgress,
    StudyResult,
    TrialRecord,
    list_studies,
    load_result,
)
from soma.study._study import Study

__all__ = [
    "Pruned",
    "Study",
    "StudyProgress",
    "StudyReport",
    "StudyResult",
    "TrialInfo",
    "TrialRecord",
    "current_trial",
    "draw_study_plot",
    "list_studies",
    "load_result",
    "report",
    "study_report",
]
