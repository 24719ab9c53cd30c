"""The execution-backend base class (see :mod:`soma.execution`)."""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar, TypeVar

__all__ = ["ExecutionBackend", "default_workers"]

T = TypeVar("T")

_CPUS = os.cpu_count() or 1  # os.cpu_count() is slow enough to matter per run


def default_workers() -> int:
    """Workers when none are asked for: one per CPU."""
    return _CPUS


class ExecutionBackend(abc.ABC):
    """Runs zero-argument calls, possibly concurrently, and hands back futures."""

    #: Whether submitted calls run in this process (and may share its memory).
    in_process: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def max_workers(self) -> int:
        """How many submitted calls may run at the same time."""

    @abc.abstractmethod
    def submit(self, node_call: Callable[[], T]) -> Future[T]:
        """Start ``node_call()``; the future gives its result or re-raises its error."""

    def shutdown(self, wait: bool = True) -> None:  # noqa: B027 - optional for backends
        """Release workers; a later ``submit`` may start them again."""

    def __enter__(self) -> ExecutionBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
