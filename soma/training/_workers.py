"""Local worker processes for the strategies: persistent, one command pipe each.

A strategy needs a task to land on *the* process that holds a shard (a replica keeps its
rows and, under allreduce, its copy of the state), which a ProcessPoolExecutor cannot
promise. So each worker is a subprocess serving ``fn(slot, *args)`` calls from its
socket; ``slot`` is a dict that lives as long as the process (shards, states, stages).
Workers start with one BLAS / OpenMP thread (and ``torch.set_num_threads(1)``): the
replicas are the parallelism, and oversubscribed BLAS threads would only fight for cores.

Pools are shared per size and kept for the life of the process (a start costs ~0.3 s, a
torch import ~1.5 s): closed at exit, their processes stopped by PID.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.machinery
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle

from soma.training._strategy import TrainingError

__all__ = ["Outcome", "WorkerPool", "get_pool", "ship"]

_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
_BOOT = "import sys; from soma.training._workers import serve_fd; serve_fd(int(sys.argv[1]))"


def serve_fd(fd: int) -> None:
    """A worker process's entry point: serve the socket ``fd``."""
    _serve(Connection(fd))


def _serve(conn: Connection) -> None:
    """The worker loop: run ``fn(slot, *args)`` per message until told to stop."""
    slot: dict[str, Any] = {}
    torch_pinned = False
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if message == b"stop":
            return
        started = time.perf_counter()
        try:
            fn, args = cloudpickle.loads(message)
            if not torch_pinned and "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
                torch_pinned = True
            result = ("ok", fn(slot, *args), time.perf_counter() - started)
            reply = cloudpickle.dumps(result)
        except BaseException as exc:
            detail = f"{type(exc).__name__}: {exc}"
            reply = cloudpickle.dumps(("error", detail, traceback.format_exc()))
        conn.send_bytes(reply)


@dataclass(slots=True)
class Outcome:
    value: Any
    seconds: float  # time the worker spent in fn
    sent: int  # bytes to the worker
    received: int  # bytes back


def ship(obj: Any) -> None:
    """Classes from modules a fresh interpreter cannot import (pipeline files, notebooks)
    travel by value instead of by reference."""
    module_name = getattr(type(obj), "__module__", None)
    if not module_name or module_name == "__main__":
        return
    top = module_name.partition(".")[0]
    if top in sys.builtin_module_names:
        return
    if importlib.machinery.PathFinder.find_spec(top, sys.path) is not None:
        return
    module = sys.modules.get(module_name)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)


class WorkerPool:
    """``size`` worker processes; :meth:`run` sends one task to each chosen worker at once
    and gathers the results (so the workers compute in parallel)."""

    def __init__(self, size: int) -> None:
        # Plain subprocesses on a socket pair, not multiprocessing's spawn: spawn re-runs
        # the caller's __main__ script in every worker (a script without a __main__ guard
        # would start workers recursively). The worker gets the caller's sys.path, so
        # classes from importable modules travel by reference, and cloudpickle ships the
        # rest by value.
        self.size = size
        self.lock = threading.Lock()  # one strategy call at a time per pool
        self.broken: str | None = None
        self._conns: list[Connection] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        path = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
        env = {**os.environ, **_ONE_THREAD, "PYTHONPATH": os.pathsep.join(path)}
        try:
            for _ in range(size):
                parent, child = socket.socketpair()
                with child:
                    fd = child.fileno()
                    proc = subprocess.Popen(
                        [sys.executable, "-c", _BOOT, str(fd)], pass_fds=(fd,), env=env
                    )
                self._procs.append(proc)
                self._conns.append(Connection(parent.detach()))
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [int(p.pid) for p in self._procs]

    def _exit_code(self, index: int) -> int | None:
        try:
            return self._procs[index].wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return None

    def run(
        self, tasks: Sequence[tuple[int, Callable[..., Any], tuple[Any, ...]]], role: str
    ) -> list[Outcome]:
        """Run ``fn(slot, *args)`` on worker ``index`` for each task; all in parallel.

        TrainingError naming ``role`` and the task's position when a task raises or its
        worker dies (the first failure, after every task has answered).
        """
        if self.broken is not None:
            raise TrainingError(f"the worker pool is unusable: {self.broken}")
        sent: list[int] = []
        for index, fn, args in tasks:
            payload = cloudpickle.dumps((fn, args))
            sent.append(len(payload))
            self._send(index, payload, role, len(sent) - 1)
        outcomes: list[Outcome | None] = [None] * len(tasks)
        failure: str | None = None
        pending = {self._conns[index]: pos for pos, (index, _, _) in enumerate(tasks)}
        while pending:
            for conn in wait(list(pending)):
                pos = pending.pop(conn)  # type: ignore[call-overload]
                index = tasks[pos][0]
                try:
                    reply = conn.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    code = self._exit_code(index)
                    self.broken = f"worker {index} (pid {self.pids[index]}) died, exit code {code}"
                    failure = (
                        failure or f"{role} {pos} (pid {self.pids[index]}) died (exit code {code})"
                    )
                    continue
                status, *rest = cloudpickle.loads(reply)
                if status == "ok":
                    outcomes[pos] = Outcome(rest[0], rest[1], sent[pos], len(reply))
                else:
                    failure = failure or f"{role} {pos} (pid {self.pids[index]}) raised {rest[0]}"
        if failure is not None:
            if self.broken is not None:
                _forget(self)
            raise TrainingError(failure)
        return outcomes  # type: ignore[return-value]

    def submit(self, index: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> int:
        """Send one task to worker ``index`` without waiting (see :meth:`receive`)."""
        payload = cloudpickle.dumps((fn, args))
        self._send(index, payload, f"worker {index}", index)
        return len(payload)

    def ready(self, indices: Sequence[int]) -> list[int]:
        """The workers among ``indices`` with a reply waiting (blocks until one has)."""
        conns = {self._conns[i]: i for i in indices}
        return [conns[c] for c in wait(list(conns))]  # type: ignore[index]

    def receive(self, index: int, role: str) -> tuple[Any, float]:
        """The reply of worker ``index``'s task: (value, seconds); TrainingError if it
        raised or died."""
        try:
            reply = self._conns[index].recv_bytes()
        except (EOFError, OSError):
            code = self._exit_code(index)
            self.broken = f"worker {index} (pid {self.pids[index]}) died, exit code {code}"
            _forget(self)
            raise TrainingError(
                f"{role} (pid {self.pids[index]}) died (exit code {code})"
            ) from None
        status, *rest = cloudpickle.loads(reply)
        if status != "ok":
            raise TrainingError(f"{role} (pid {self.pids[index]}) raised {rest[0]}")
        return rest[0], rest[1]

    def _send(self, index: int, payload: bytes, role: str, pos: int) -> None:
        try:
            self._conns[index].send_bytes(payload)
        except (BrokenPipeError, OSError) as exc:
            self.broken = f"worker {index} (pid {self.pids[index]}) is gone: {exc}"
            _forget(self)
            raise TrainingError(f"{role} {pos}: {self.broken}") from exc

    def close(self) -> None:
        """Stop every worker: ask, then terminate and kill by PID if it does not exit."""
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.send_bytes(b"stop")
        for proc in self._procs:
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.terminate()  # this pool's own child, by its pid
                try:
                    proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=2.0)
        for conn in self._conns:
            with contextlib.suppress(Exception):
                conn.close()
        self.broken = self.broken or "closed"


_pools: dict[int, WorkerPool] = {}
_pools_lock = threading.Lock()


def get_pool(size: int) -> WorkerPool:
    """The shared pool of ``size`` workers (started on first use)."""
    with _pools_lock:
        pool = _pools.get(size)
        if pool is None or pool.broken is not None:
            pool = WorkerPool(size)
            _pools[size] = pool
        return pool


def _forget(pool: WorkerPool) -> None:
    with _pools_lock:
        if _pools.get(pool.size) is pool:
            del _pools[pool.size]
    threading.Thread(target=pool.close, daemon=True).start()


def close_pools() -> None:
    """Stop every shared worker process (also run at exit)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)
