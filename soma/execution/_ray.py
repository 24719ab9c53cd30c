"""The Ray backend: a Graph whose backend is a cluster (``soma.cluster.Lab``).

``Graph(backend=RayBackend(lab))`` (or ``lab.backend()``) runs the graph's Remote steps (the
nodes placed with ``resources=`` / ``tags=``) on the Lab's workers; the plan's other steps
and its parallel branches stay on the driver, where the result cache is consulted before
anything is dispatched. ``submit(call)`` runs any self-contained zero-argument call on a
worker (the call travels cloudpickled; a ``placement`` attribute on it picks the worker).
Ray is imported only when a call is submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar, TypeVar

from soma.errors import ValidationError
from soma.execution._base import ExecutionBackend

__all__ = ["RayBackend"]

T = TypeVar("T")


class RayBackend(ExecutionBackend):
    """Runs calls as jobs on a ``soma.cluster.Lab`` (Lab.connect / Lab.local)."""

    in_process: ClassVar[bool] = False

    def __init__(self, lab: Any) -> None:
        from soma.cluster.lab import Lab

        if not isinstance(lab, Lab):
            raise ValidationError("lab", f"expected a soma.cluster.Lab, got {lab!r}")
        self.lab = lab

    @property
    def max_workers(self) -> int:
        """Soma job slots across the alive workers (``--max-concurrent`` summed)."""
        return max(1, int(sum(n["slots"] for n in self.lab.workers() if n["alive"])))

    def submit(self, node_call: Callable[[], T]) -> Future[T]:
        from soma.cluster._jobs import Placement

        placement = getattr(node_call, "placement", None) or Placement()
        what = getattr(node_call, "__name__", None) or type(node_call).__name__
        job = self.lab.submit_placed(node_call, (), {}, placement, what)
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()

        def settle(_: Any) -> None:
            try:
                future.set_result(job.result())
            except BaseException as exc:
                future.set_exception(exc)

        job.ref.future().add_done_callback(settle)
        return future

    def __repr__(self) -> str:
        return f"RayBackend({self.lab!r})"
