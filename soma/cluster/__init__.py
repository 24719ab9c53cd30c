"""Soma on a cluster: a Ray coordinator, workers with enforced limits, and ``Lab``.

Ray is an optional dependency (``soma-research[cluster]``); nothing here imports it until a
Lab is opened, so ``import soma`` and ``import soma.cluster`` stay Ray-free.
"""

from __future__ import annotations

from soma.cluster._errors import ClusterError, CoordinatorUnreachable, TokenRejected, WorkerLost

__all__ = ["ClusterError", "CoordinatorUnreachable", "Lab", "TokenRejected", "WorkerLost"]


def __getattr__(name: str) -> object:
    if name == "Lab":
        from soma.cluster.lab import Lab

        return Lab
    raise AttributeError(f"module 'soma.cluster' has no attribute {name!r}")
