"""What runs on a worker: a call wrapped so its error comes back naming the worker.

Kept free of module-level Ray imports: Ray pickles these functions by reference, and the
worker imports this module from its own (the driver's version of) Soma.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import traceback
from typing import Any

from soma.cluster._errors import ClusterError

__all__ = ["RemoteTaskError", "node_task", "run_call", "worker_name"]


def worker_name() -> str:
    """The Soma name of the worker this process runs on (``soma worker start --name``)."""
    return os.environ.get("SOMA_WORKER_NAME") or socket.gethostname()


class RemoteTaskError(ClusterError):
    """User code raised on a worker; ``worker`` names it, ``cause`` is the original error."""

    def __init__(self, what: str, worker: str, cause: BaseException, remote_tb: str) -> None:
        self.what = what
        self.worker = worker
        self.cause = cause
        self.remote_traceback = remote_tb
        super().__init__(f"{what} failed on worker {worker!r}: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.what, self.worker, self.cause, self.remote_traceback))


def run_call(what: str, fn: Any, args: tuple, kwargs: dict) -> tuple[bool, Any, str]:
    """``fn(*args, **kwargs)`` -> (ok, value or error, worker). Never raises user errors.

    The error travels as a value rather than a Ray task failure so Ray does not retry a
    deterministic user bug (retries are for lost workers) and the driver can name the worker.
    """
    name = worker_name()
    try:
        return True, fn(*args, **kwargs), name
    except Exception as exc:
        try:
            import cloudpickle

            cloudpickle.dumps(exc)
            cause: BaseException = exc
        except Exception:  # an unpicklable error still comes back, as its text
            cause = RuntimeError(f"{type(exc).__name__}: {exc}")
        return False, RemoteTaskError(what, name, cause, traceback.format_exc()), name


def call_method(target: Any, method: str, args: tuple, kwargs: dict) -> Any:
    return getattr(target, method)(*args, **kwargs)


def node_task(
    strategy: Any, call: Any, flt: Any, args: tuple, state: Any, variadic: bool, forward: bool
) -> tuple[Any, Any]:
    """One graph node on a worker: fit through the graph's strategy when ``call`` is given
    (a soma.training FitCall), then forward when asked. -> (new state or None, output).

    DataRefs among the inputs (a run whose driver left them unresolved, see
    ``inputs_stay_refs``) are read here, from their store."""
    if "soma.data.ref" in sys.modules:  # unpickling a DataRef imported it: else none came
        from soma.data.ref import resolve_input

        args = tuple(resolve_input(a) for a in args)
        if call is not None:
            call = dataclasses.replace(call, args=args, y=resolve_input(call.y))
    fitted = None
    if call is not None:
        state = fitted = strategy.fit(call)
    output = None
    if forward:
        output = flt.forward(*args, state=state) if variadic else flt.forward(*args, state)
    return fitted, output
