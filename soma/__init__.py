"""Soma: run machine-learning research with an AI assistant at your side.

The public Python API lives here; everything else is in private modules.
"""

from __future__ import annotations

from soma._control_flow import Branch, Loop
from soma._expr import Chain, Fork
from soma.cache import Cache, CacheStats
from soma.errors import (
    CacheError,
    ExecutionError,
    GraphError,
    KnowledgeBaseError,
    ParamError,
    ProjectError,
    SomaError,
    StudyError,
    ValidationError,
)
from soma.events import Event, NodeReport, RunReport
from soma.filter import Filter
from soma.graph import Graph
from soma.plan import ExecutionPlan, GraphWarning
from soma.space import Choice, FloatRange, IntRange, SearchSpace, search
from soma.vocabulary import Action, Direction, Origin, Status

__version__ = "0.1.0"

# Heavier faces load on first use so `import soma` stays fast (Optuna, SQLite, embeddings).
_LAZY_EXPORTS = {
    "Study": "soma.study",
    "report": "soma.study",
    "Pruned": "soma.study",
    "PBT": "soma.pbt",
    "IterativeFilter": "soma.pbt",
    "KnowledgeBase": "soma.knowledge",
    "Experiment": "soma.knowledge",
    "ResearchLine": "soma.knowledge",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'soma' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))


__all__ = [
    "PBT",
    "Action",
    "Branch",
    "Cache",
    "CacheError",
    "CacheStats",
    "Chain",
    "Choice",
    "Direction",
    "Event",
    "ExecutionError",
    "ExecutionPlan",
    "Experiment",
    "Filter",
    "FloatRange",
    "Fork",
    "Graph",
    "GraphError",
    "GraphWarning",
    "IntRange",
    "IterativeFilter",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Loop",
    "NodeReport",
    "Origin",
    "ParamError",
    "ProjectError",
    "Pruned",
    "ResearchLine",
    "RunReport",
    "SearchSpace",
    "SomaError",
    "Status",
    "Study",
    "StudyError",
    "ValidationError",
    "__version__",
    "report",
    "search",
]
