"""Soma: run machine-learning research with an AI assistant at your side.

The public Python API lives here; everything else is in private modules.
"""

from __future__ import annotations

from soma._expr import Chain, Fork
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
from soma.filter import Filter
from soma.space import Choice, FloatRange, IntRange, SearchSpace, search

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "Chain",
    "Choice",
    "ExecutionError",
    "Filter",
    "FloatRange",
    "Fork",
    "GraphError",
    "IntRange",
    "KnowledgeBaseError",
    "ParamError",
    "ProjectError",
    "SearchSpace",
    "SomaError",
    "StudyError",
    "ValidationError",
    "__version__",
    "search",
]
