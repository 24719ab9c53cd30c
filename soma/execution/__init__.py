"""Execution backends: where the executor runs work that may run concurrently.

The seam is :class:`ExecutionBackend`, one method wide::

    future = backend.submit(node_call)   # node_call: a zero-argument callable
    future.result()                      # its return value, or its exception re-raised

``submit`` returns a ``concurrent.futures.Future`` (or anything with ``result()``,
``done()`` and ``add_done_callback()``). ``max_workers`` says how many calls may run at
once; ``shutdown()`` releases what the backend holds.

:class:`ThreadBackend` is the first backend: a thread pool in this process, made on first
use and owned by the backend object (no module-global pool). A ``Graph`` holds one
(``Graph(backend=...)``; by default it makes its own, sized by ``max_workers``, and shares
it with the copies ``with_params`` makes). Parallel branches of one run share that run's
in-memory values, so the executor submits them to in-process backends only
(``in_process = True``). A remote backend (Ray) sets ``in_process = False`` and receives
self-contained node calls (filter, inputs and state travel with the call, cloudpickled),
never a branch of a running plan: implement ``submit`` and ``max_workers``, and say
``in_process = False``. :class:`RayBackend` is that backend: with it, the plan's Remote
steps (nodes placed with ``resources=`` / ``tags=``) run on its Lab's workers.

:class:`ProcessBackend` runs calls in reused worker processes of this machine, under
:class:`Limits` (wall time, memory) and a cancel event: whatever user code does there
(``sys.exit``, ``os._exit``, a segfault, an endless loop) comes back as a
:class:`WorkerError` and the calling process goes on. The tool layer runs a project's data
loader, filter imports and evaluations there (``soma.project._isolated``).
"""

from __future__ import annotations

from soma.execution._base import ExecutionBackend, default_workers
from soma.execution._process import (
    LimitExceeded,
    Limits,
    ProcessBackend,
    UserExit,
    WorkerCancelled,
    WorkerCrashed,
    WorkerError,
    cancel_scope,
)
from soma.execution._threads import ThreadBackend

__all__ = [
    "ExecutionBackend",
    "LimitExceeded",
    "Limits",
    "ProcessBackend",
    "RayBackend",
    "ThreadBackend",
    "UserExit",
    "WorkerCancelled",
    "WorkerCrashed",
    "WorkerError",
    "cancel_scope",
    "default_workers",
]


def __getattr__(name: str) -> object:
    if name == "RayBackend":  # soma.execution stays Ray-free until it is asked for
        from soma.execution._ray import RayBackend

        return RayBackend
    raise AttributeError(f"module 'soma.execution' has no attribute {name!r}")
