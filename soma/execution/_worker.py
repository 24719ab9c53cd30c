"""The worker process of :class:`~soma.execution.ProcessBackend`.

Started as ``python -m soma.execution._worker FD`` (FD: this end of a socket pair), it runs
one call at a time for as long as its parent lives: a call arrives cloudpickled as
``("call", fn, args, kwargs)`` and goes back as ``("ok", value)`` or ``("error", exc)``.
Whatever the call raises, a ``SystemExit``, a ``KeyboardInterrupt`` or any other
``BaseException`` included, becomes the error reply and the worker waits for the next call;
only the parent kills it (a time or memory limit, a cancel) or it dies on its own (a
segfault, ``os._exit``), and then the parent starts another.

Code running in a call may talk to the parent: :func:`emit` sends an event (progress, the
node that starts), :func:`ask` sends a question and waits for the answer (a study's pruner
lives in the parent). :func:`memo` keeps what is costly to build (a loaded project, its data,
a cache) for the worker's whole life, which is what makes a reused worker fast.

Standard output is the parent's standard error (set by the parent): a ``print`` in user code
can never reach the MCP stdio stream.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from soma.errors import error_chain

__all__ = ["ask", "emit", "in_worker", "memo"]

T = TypeVar("T")

_CONN: Connection | None = None
_SEND_LOCK = threading.Lock()
_ASK_LOCK = threading.Lock()
_MEMO: dict[Any, Any] = {}
_MEMO_LOCK = threading.Lock()


def in_worker() -> bool:
    """Whether this code runs in a ProcessBackend worker."""
    return _CONN is not None


def _send(message: Any) -> None:
    import cloudpickle

    data = cloudpickle.dumps(message)
    assert _CONN is not None
    with _SEND_LOCK:
        _CONN.send_bytes(data)


def emit(event: Any) -> None:
    """Send ``event`` to the parent's ``on_event`` (nothing outside a worker)."""
    if _CONN is not None:
        _send(("event", event))


def ask(question: Any) -> Any:
    """Send ``question`` to the parent's ``on_ask`` and return its answer."""
    if _CONN is None:
        raise RuntimeError("ask() works only inside a ProcessBackend worker")
    import pickle

    # One question at a time: the call's thread is the only reader while the call runs.
    with _ASK_LOCK:
        _send(("ask", question))
        kind, answer = pickle.loads(_CONN.recv_bytes())
    if kind != "answer":
        raise RuntimeError(f"expected an answer from the parent, got {kind!r}")
    return answer


def memo(key: Any, factory: Callable[[], T]) -> T:
    """``factory()``, computed once per worker process for ``key``."""
    with _MEMO_LOCK:
        if key in _MEMO:
            return _MEMO[key]  # type: ignore[no-any-return]
    value = factory()
    with _MEMO_LOCK:
        return _MEMO.setdefault(key, value)  # type: ignore[no-any-return]


def forget(predicate: Callable[[Any], bool]) -> None:
    """Drop the memo entries whose key matches (e.g. a project's data after a reload)."""
    with _MEMO_LOCK:
        for key in [k for k in _MEMO if predicate(k)]:
            del _MEMO[key]


def _keep_frames(exc: BaseException) -> None:
    """Tracebacks do not pickle: keep each error's frames as ``__soma_frames__``."""
    for current in error_chain(exc):
        if current.__traceback__ is not None and not hasattr(current, "__soma_frames__"):
            # An exception type with read-only attributes keeps no frames.
            with contextlib.suppress(Exception):
                frames = traceback.extract_tb(current.__traceback__)
                current.__soma_frames__ = frames  # type: ignore[attr-defined]


def _reply_error(exc: BaseException) -> None:
    from soma.execution._process import RemoteError

    _keep_frames(exc)
    try:
        _send(("error", exc))
    except Exception:  # the error itself does not pickle: send what it says
        _send(("error", RemoteError.of(exc)))


def _serve(conn: Connection) -> None:
    import pickle

    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent closed its end: nothing more to do
        try:
            kind, fn, args, kwargs = pickle.loads(data)
            if kind == "path":
                sys.path[:] = [p for p in args if isinstance(p, str)]
                continue
            value = fn(*args, **kwargs)
        except BaseException as exc:
            _reply_error(exc)
            continue
        try:
            _send(("ok", value))
        except Exception as exc:
            _reply_error(RuntimeError(f"the result could not be sent back: {exc}"))


def _watch_parent(parent: int) -> None:
    """A worker whose parent died (kill -9) must not live on, still running user code."""

    def watch() -> None:
        import time

        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="soma-parent-watch", daemon=True).start()


def main(argv: list[str]) -> None:
    global _CONN
    conn = Connection(int(argv[1]))
    _CONN = conn
    _watch_parent(int(argv[2]))
    _serve(conn)


if __name__ == "__main__":
    # Run as the importable module, not as __main__: code in a call imports
    # soma.execution._worker (emit, ask, memo) and must find this connection there.
    from soma.execution import _worker

    _worker.main(sys.argv)
