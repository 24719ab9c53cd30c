"""The process backend: user code runs in reused worker processes, under limits.

``ProcessBackend(max_workers)`` keeps up to that many worker processes
(``python -m soma.execution._worker``), started on first use and reused call after call, so a
warm call costs one round trip of pickles, not a process start. :meth:`ProcessBackend.call`
runs ``fn(*args)`` in one of them and returns its value; whatever goes wrong comes back as
a :class:`WorkerError`, and the calling process is never taken down:

* ``fn`` raises: its exception, re-raised here (its frames kept as ``__soma_frames__``);
  a ``SystemExit``, ``KeyboardInterrupt`` or other ``BaseException`` becomes a
  :class:`UserExit` (the worker lives on);
* the worker dies (``os._exit``, a segfault, the kernel's OOM killer): :class:`WorkerCrashed`
  with its exit code or signal; the next call starts a fresh worker;
* a limit is passed (``Limits.timeout_s`` of wall time, ``Limits.memory_mb`` of resident
  memory of the worker and its children, polled every 50 ms): the worker's whole process
  group is killed and :class:`LimitExceeded` names the limit;
* the ``cancel`` event is set (an MCP cancel): the worker is killed, :class:`WorkerCancelled`.

Workers start in their own session (a Ctrl-C at the terminal is the parent's to handle),
with standard output sent to the parent's standard error, and end when the parent does.
``submit(call)`` (the :class:`ExecutionBackend` seam) runs a zero-argument call the same
way and returns a future.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from soma.errors import SomaError, ValidationError
from soma.execution._base import ExecutionBackend

__all__ = [
    "LimitExceeded",
    "Limits",
    "ProcessBackend",
    "RemoteError",
    "UserExit",
    "WorkerCancelled",
    "WorkerCrashed",
    "WorkerError",
    "cancel_requested",
    "cancel_scope",
]

T = TypeVar("T")

#: How often a waiting call checks its worker's memory, the clock and a cancel.
POLL_S = 0.05
_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "soma_cancel", default=None
)


class WorkerError(SomaError):
    """User code's worker process failed, or was stopped by a limit or a cancel."""


class WorkerCrashed(WorkerError):
    """The worker process ended while running a call (``os._exit``, a signal, OOM)."""


class LimitExceeded(WorkerError):
    """A call passed its time or memory limit; ``limit`` is ``timeout_s`` or ``memory_mb``."""

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.limit, str(self)), self.__dict__)


class WorkerCancelled(WorkerError):
    """The call was cancelled; its worker was killed."""


class UserExit(WorkerError):
    """User code raised a ``BaseException`` that is not an ``Exception`` (``sys.exit()``,
    ``KeyboardInterrupt``, a custom one); ``kind`` is its class name."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # With __dict__: the user's frames (__soma_frames__) travel too.
        return (type(self), (self.kind, str(self)), self.__dict__)

    @classmethod
    def of(cls, exc: BaseException) -> UserExit:
        what = f"{type(exc).__name__}({', '.join(repr(a) for a in exc.args)})"
        error = cls(type(exc).__name__, f"user code raised {what}")
        frames = getattr(exc, "__soma_frames__", None)
        if frames is not None:
            error.__soma_frames__ = frames  # type: ignore[attr-defined]
        return error


class RemoteError(WorkerError):
    """An error from the worker that could not travel as itself (it does not pickle)."""

    def __init__(self, kind: str, message: str, frames: Any = None) -> None:
        self.kind = kind
        self.__soma_frames__ = frames
        super().__init__(f"{kind}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, str(self).split(": ", 1)[-1], self.__soma_frames__))

    @classmethod
    def of(cls, exc: BaseException) -> RemoteError:
        return cls(type(exc).__name__, str(exc)[:2000], getattr(exc, "__soma_frames__", None))


@dataclass(frozen=True)
class Limits:
    """Per-call limits: wall-time seconds and resident megabytes (None: no limit)."""

    timeout_s: float | None = None
    memory_mb: int | None = None

    def __post_init__(self) -> None:
        t, m = self.timeout_s, self.memory_mb
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t <= 0):
            raise ValidationError("timeout_s", f"expected seconds > 0 or None, got {t!r}")
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 16):
            raise ValidationError("memory_mb", f"expected megabytes >= 16 or None, got {m!r}")

    def merged(self, other: Limits | None) -> Limits:
        """These limits, with each one ``other`` sets taking its place."""
        if other is None:
            return self
        return Limits(
            other.timeout_s if other.timeout_s is not None else self.timeout_s,
            other.memory_mb if other.memory_mb is not None else self.memory_mb,
        )


@contextlib.contextmanager
def cancel_scope(event: threading.Event) -> Iterator[None]:
    """Calls made in this context (this thread) are killed when ``event`` is set."""
    token = _CANCEL.set(event)
    try:
        yield
    finally:
        _CANCEL.reset(token)


def cancel_requested() -> bool:
    """Whether the calling context's cancel event (:func:`cancel_scope`) is set: long loops
    (a study's trials) stop starting work once their call was cancelled."""
    event = _CANCEL.get()
    return event is not None and event.is_set()


class _Worker:
    """One worker process and this end of its socket pair."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "soma.execution._worker", str(theirs.fileno()),
                 str(os.getpid())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=2,  # a print in user code lands on our stderr, never on stdout
                start_new_session=True,
                env=env,
            )  # fmt: skip
        finally:
            theirs.close()
        self.conn = Connection(mine.detach())
        self.calls = 0
        self._ps: Any = None
        self.send(("path", None, list(sys.path), None))

    def send(self, message: Any) -> None:
        import cloudpickle

        self.conn.send_bytes(cloudpickle.dumps(message))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        import psutil

        try:
            if self._ps is None:
                self._ps = psutil.Process(self.proc.pid)
            total = self._ps.memory_info().rss
            for child in self._ps.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
        except psutil.Error:
            return 0.0
        return total / 2**20

    def kill(self) -> None:
        # The whole session: a filter's own subprocesses (joblib, loky) go with it.
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        with contextlib.suppress(OSError):
            self.conn.close()

    def describe_exit(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2)
        code = self.proc.returncode
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"was killed by {name}{hint}"
        return f"exited with code {code}"


class ProcessBackend(ExecutionBackend):
    """Up to ``max_workers`` reused worker processes; calls run under ``limits``."""

    in_process = False

    def __init__(self, max_workers: int = 1, *, limits: Limits | None = None) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValidationError("max_workers", f"expected an int >= 1, got {max_workers!r}")
        self._max_workers = max_workers
        self.limits = limits or Limits()
        self._idle: list[_Worker] = []
        self._started = 0
        self._cond = threading.Condition()
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        #: Workers started so far (a restart after a crash counts).
        self.starts = 0

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def warm(self) -> None:
        """Start one worker now (in the background), so the first call finds it ready."""

        def start() -> None:
            with contextlib.suppress(Exception):
                self._release(self._acquire())

        threading.Thread(target=start, name="soma-worker-warm", daemon=True).start()

    def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        limits: Limits | None = None,
        cancel: threading.Event | None = None,
        on_event: Callable[[Any], Any] | None = None,
        on_ask: Callable[[Any], Any] | None = None,
        what: str = "the call",
        timeout_per_event: bool = False,
        **kwargs: Any,
    ) -> T:
        """``fn(*args, **kwargs)`` in a worker: its value, or a WorkerError / its error.

        ``timeout_per_event``: the time limit counts from the worker's last event, not from
        the start (a limit per step, e.g. per file imported).
        """
        limit = self.limits.merged(limits)
        cancel = cancel if cancel is not None else _CANCEL.get()
        if cancel is not None and cancel.is_set():  # e.g. the next trial of a cancelled study
            raise WorkerCancelled(f"{what} was cancelled before it started")
        worker = self._acquire()
        keep = False
        try:
            worker.send(("call", fn, args, kwargs))
            kind, value = self._wait(
                worker, limit, cancel, on_event, on_ask, what, timeout_per_event
            )
            keep = True  # the worker answered: it is fit for the next call
        finally:
            if keep:
                self._release(worker)
            else:
                self._discard(worker)
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if isinstance(value, Exception):
            raise value
        raise UserExit.of(value)

    def _wait(
        self,
        worker: _Worker,
        limit: Limits,
        cancel: threading.Event | None,
        on_event: Callable[[Any], Any] | None,
        on_ask: Callable[[Any], Any] | None,
        what: str,
        per_event: bool,
    ) -> tuple[str, Any]:
        started = time.monotonic()
        deadline = None if limit.timeout_s is None else started + limit.timeout_s
        while True:
            if worker.conn.poll(POLL_S):
                try:
                    kind, value = pickle.loads(worker.conn.recv_bytes())
                except (EOFError, OSError):
                    worker.kill()
                    raise WorkerCrashed(
                        f"the worker process running {what} {worker.describe_exit()}"
                    ) from None
                except Exception as exc:  # a reply that does not unpickle here
                    return "error", RemoteError(type(exc).__name__, f"reply unreadable: {exc}")
                if kind in ("ok", "error"):
                    return kind, value
                if kind == "event":
                    if per_event and limit.timeout_s is not None:
                        deadline = time.monotonic() + limit.timeout_s
                    if on_event is not None:
                        on_event(value)
                elif kind == "ask":
                    worker.send(("answer", None if on_ask is None else on_ask(value)))
                continue
            if cancel is not None and cancel.is_set():
                worker.kill()
                raise WorkerCancelled(f"{what} was cancelled; its worker process was stopped")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                worker.kill()
                raise LimitExceeded(
                    "timeout_s",
                    f"{what} passed its time limit of {limit.timeout_s:g} s (timeout_s) and was "
                    "stopped",
                )
            if limit.memory_mb is not None:
                rss = worker.rss_mb()
                if rss > limit.memory_mb:
                    worker.kill()
                    raise LimitExceeded(
                        "memory_mb",
                        f"{what} passed its memory limit of {limit.memory_mb} MB (memory_mb; "
                        f"the worker held {rss:.0f} MB) and was stopped",
                    )
            if not worker.alive() and not worker.conn.poll(0):
                raise WorkerCrashed(f"the worker process running {what} {worker.describe_exit()}")

    # -- the pool --------------------------------------------------------------------------

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerError("the process backend was shut down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._started -= 1
                    worker.kill()
                if self._started < self._max_workers:
                    self._started += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker()
        except BaseException:
            with self._cond:
                self._started -= 1
                self._cond.notify()
            raise
        self.starts += 1
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if self._closed:
                worker.kill()
                self._started -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._cond:
            self._started -= 1
            self._cond.notify()

    def submit(self, node_call: Callable[[], T]) -> Future[T]:
        with self._cond:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="soma-proc")
            pool = self._pool
        return pool.submit(self.call, node_call)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the idle workers; busy ones are stopped as their calls end."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._started -= len(idle)
            pool, self._pool = self._pool, None
            self._cond.notify_all()
        for worker in idle:
            worker.kill()
        if pool is not None:
            pool.shutdown(wait=wait)

    def __repr__(self) -> str:
        return f"ProcessBackend(max_workers={self._max_workers}, limits={self.limits})"
