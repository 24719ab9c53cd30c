"""The thread-pool backend: calls run in threads of this process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from soma.errors import ValidationError
from soma.execution._base import ExecutionBackend

__all__ = ["ThreadBackend"]

T = TypeVar("T")


class ThreadBackend(ExecutionBackend):
    """A pool of ``max_workers`` threads, started on the first ``submit``.

    The caller's contextvars are not copied here: the executor copies them into each call
    it submits, so every backend sees the same context.
    """

    def __init__(self, max_workers: int) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError("max_workers", f"expected an int >= 1, got {max_workers!r}")
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def submit(self, node_call: Callable[[], T]) -> Future[T]:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=self._max_workers, thread_name_prefix="soma-worker"
                    )
                pool = self._pool
        return pool.submit(node_call)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)

    def __repr__(self) -> str:
        return f"ThreadBackend(max_workers={self._max_workers})"
