"""Errors of the cluster face; all are SomaErrors so callers can catch one base class."""

from __future__ import annotations

from soma.errors import ExecutionError, SomaError

__all__ = [
    "ClusterError",
    "CoordinatorUnreachable",
    "RemoteNodeError",
    "TokenRejected",
    "WorkerLost",
]


class ClusterError(SomaError):
    """The cluster could not be started, joined, or could not run a job."""


class TokenRejected(ClusterError):
    """The coordinator refused the token (missing or wrong)."""


class CoordinatorUnreachable(ClusterError):
    """Nothing answered at the coordinator's address."""


class WorkerLost(ClusterError):
    """The worker running a job died and the job could not be retried elsewhere."""


class RemoteNodeError(ExecutionError, ClusterError):
    """A graph node failed on a worker: ``node``, ``phase`` and ``worker`` name where;
    ``cause`` is the node's own error (re-raised from the worker)."""

    def __init__(self, node: str, phase: str, cause: BaseException, worker: str) -> None:
        super().__init__(node, phase, cause)
        self.worker = worker
        self.args = (
            f"node {node!r} failed during {phase} on worker {worker!r}: "
            f"{type(cause).__name__}: {cause}",
        )

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[RemoteNodeError], tuple[str, str, BaseException, str]]:  # type: ignore[override]
        return (type(self), (self.node, self.phase, self.cause, self.worker))
