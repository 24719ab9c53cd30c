"""Population-Based Training over Soma graphs.

``PBT(graph, data=..., metric=..., population=8, rounds=10, steps=1).run()`` trains a
population of copies of the graph's iterative node (a :class:`IterativeFilter`), and
between rounds lets the bottom members copy the state and hyperparameters of the top ones
(exploit) and move those hyperparameters (explore). The result holds the final population,
the lineage (who copied whom, when) and the best member's hyperparameter schedule.
"""

from __future__ import annotations

from soma.pbt._iterative import IterativeFilter, is_iterative
from soma.pbt._pbt import PBT
from soma.pbt._result import (
    LineageEvent,
    Member,
    PBTProgress,
    PBTResult,
    RoundSummary,
    ScheduleStep,
)

__all__ = [
    "PBT",
    "IterativeFilter",
    "LineageEvent",
    "Member",
    "PBTProgress",
    "PBTResult",
    "RoundSummary",
    "ScheduleStep",
    "is_iterative",
]
