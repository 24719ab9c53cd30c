"""Soma's exceptions, in one hierarchy (where to import each from, in brackets)::

    SomaError
    ├── ParamError              a filter parameter: unknown name, wrong type, out of range
    │                           (also a ValueError)
    ├── GraphError              building or compiling a graph: cycles, bad edges, fan-in size
    ├── ExecutionError          a node raised while fitting or running (carries ``node``)
    ├── CacheError              the cache could not be read or written
    ├── ValidationError         bad input at a boundary: a field and what was expected
    │                           (also a ValueError)
    ├── KnowledgeBaseError      the knowledge base refused or failed an operation
    │   └── UnknownLineError    no research line of that name [soma.knowledge]
    ├── StudyError              a study or PBT run could not proceed (e.g. every trial failed)
    ├── Pruned                  a trial stopped early by its pruner [soma.study]
    ├── ProjectError            soma.toml, filter discovery, pipeline specs
    ├── EvaluationError         evaluate() failed in a stage: fit, forward or metric
    │                           [soma.experiments]
    ├── TrainingError           a strategy could not train (a replica, client, stage or
    │                           member failed, no distributed protocol) [soma.training]
    ├── StoreError              a data store failed [soma.data]
    │   ├── StoreKeyError       no object under that key (also a KeyError)
    │   ├── StoreAuthError      the store refused the credentials
    │   ├── StoreUnreachableError  the store's endpoint did not answer
    │   └── StoreCorruptError   stored bytes do not match their checksum or do not decode
    ├── StreamError             a stream cannot run as asked (a filter that cannot fit
    │                           incrementally, a bad mode) [soma.data]
    ├── MissingExtraError       an optional extra is not installed (also an ImportError)
    │                           [soma.data]
    ├── WorkerError             user code's worker process failed or was stopped
    │   │                       [soma.execution]
    │   ├── WorkerCrashed       the worker ended mid-call (os._exit, a signal, OOM)
    │   ├── LimitExceeded       a call passed its timeout_s or memory_mb; the worker was killed
    │   ├── WorkerCancelled     the call was cancelled; the worker was killed
    │   ├── UserExit            user code raised sys.exit(), KeyboardInterrupt or another
    │   │                       BaseException
    │   ├── RemoteError         an error from the worker that does not pickle, as text
    │   └── DataLoadFailed      the project's data loader failed in its worker
    │                           [soma.project._isolated]
    ├── ClusterError            the Ray cluster part [soma.cluster]
    │   ├── TokenRejected       the coordinator refused the token
    │   ├── CoordinatorUnreachable  no coordinator answers at that address
    │   ├── WorkerLost          the worker running a job died; no retry was possible
    │   ├── RemoteTaskError     user code raised on a worker [soma.cluster._remote]
    │   └── RemoteNodeError     a node failed on a worker (also an ExecutionError)
    │
    │   The faces' errors derive from SomaError too (the core never imports them):
    ├── ToolError               a research tool refused its input [soma_tools]
    │   └── PipelineFailedError  user code raised in run_pipeline (recorded as failed)
    ├── PlannerError            the agent's planner cannot propose anything [soma_agent]
    └── BudgetExceededError     the next LLM request could pass the run's dollar budget
                                [soma_agent._budget]

tests/test_errors.py checks that this tree names every subclass of SomaError.
Every message names the thing at fault (a node, a field, a file) and what was expected.
Suspicious but valid graphs (a node left dangling by ``A | B >> C``'s precedence) are not
errors: they warn with :class:`soma.GraphWarning`.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    "error_chain",
]


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error behind it, each once: Soma's ``cause`` attribute (runtime
    wrappers such as ExecutionError), ``__cause__`` and ``__context__``, depth first."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend((getattr(current, "cause", None), current.__cause__, current.__context__))


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
