"""Soma's exceptions, in one hierarchy::

    SomaError
    ├── ParamError           a filter parameter: unknown name, wrong type, out of range
    ├── GraphError           building or compiling a graph: cycles, bad edges, fan-in size
    ├── ExecutionError       a node raised while fitting or running (carries ``node``)
    ├── CacheError           the cache could not be read or written
    ├── ValidationError      bad input at a boundary (a field and what was expected)
    ├── KnowledgeBaseError   the knowledge base refused or failed an operation
    ├── StudyError           a study or PBT run could not proceed (e.g. every trial failed)
    └── ProjectError         soma.toml, filter discovery, pipeline specs

Every message names the thing at fault (a node, a field, a file) and what was expected.
Suspicious but valid graphs (a node left dangling by ``A | B >> C``'s precedence) are not
errors: they warn with :class:`soma.GraphWarning`.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ExecutionError",
    "GraphError",
    "KnowledgeBaseError",
    "ParamError",
    "ProjectError",
    "SomaError",
    "StudyError",
    "ValidationError",
]


class SomaError(Exception):
    """Base class of every error Soma raises on purpose."""


class ParamError(SomaError, ValueError):
    """A filter parameter is unknown, of the wrong type, or outside its declared range."""


class GraphError(SomaError):
    """A graph cannot be built or compiled as given."""


class ExecutionError(SomaError):
    """A node failed while fitting or running; ``node`` names it, ``__cause__`` holds the error."""

    def __init__(self, node: str, phase: str, cause: BaseException) -> None:
        self.node = node
        self.phase = phase
        self.cause = cause
        super().__init__(f"node {node!r} failed during {phase}: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[type[ExecutionError], tuple[str, str, BaseException]]:
        # Errors cross process boundaries (PBT workers, remote workers); the default
        # reduce would call __init__ with the message alone and fail.
        return (type(self), (self.node, self.phase, self.cause))


class CacheError(SomaError):
    """The cache could not store or load an entry."""


class ValidationError(SomaError, ValueError):
    """Bad input at a boundary; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, str]]:
        return (type(self), (self.field, self.message))


class KnowledgeBaseError(SomaError):
    """The knowledge base refused or failed an operation."""


class StudyError(SomaError):
    """A study or population-based training run could not produce a result."""


class ProjectError(SomaError):
    """A research project (soma.toml, filters folder, pipeline spec) is invalid."""
