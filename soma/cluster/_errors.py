"""Errors of the cluster face; all are SomaErrors so callers can catch one base class."""

from __future__ import annotations

from soma.errors import SomaError

__all__ = ["ClusterError", "CoordinatorUnreachable", "TokenRejected", "WorkerLost"]


class ClusterError(SomaError):
    """The cluster could not be started, joined, or could not run a job."""


class TokenRejected(ClusterError):
    """The coordinator refused the token (missing or wrong)."""


class CoordinatorUnreachable(ClusterError):
    """Nothing answered at the coordinator's address."""


class WorkerLost(ClusterError):
    """The worker running a job died and the job could not be retried elsewhere."""
