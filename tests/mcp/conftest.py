"""Fixtures for the MCP tests: an example project, and MCP sessions held in a background loop.

A real MCP client session (stdio or streamable HTTP) lives in its own thread and event
loop for a whole test module; tests call it synchronously through :class:`SessionHarness`.
That keeps the server process (and its one-off start cost) shared by a module's tests while
every anyio cancel scope is entered and left in the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mcp_helpers import make_project, server_env

#: Generous: the first run_pipeline in a fresh server imports scikit-learn and the embedder.
CALL_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh `soma init --example digits` project for one test module."""
    return make_project(tmp_path_factory.mktemp("proj") / "digits")


class SessionHarness:
    """A ClientSession kept open in a background event loop; sync calls from the test."""

    def __init__(self, open_session: Callable[[], Any]) -> None:
        self._open_session = open_session
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._ready: Future[Any] = Future()
        self._done: Future[None] | None = None
        self.session: Any = None

    def start(self, timeout: float = 60.0) -> SessionHarness:
        self._thread.start()
        self._done = asyncio.run_coroutine_threadsafe(self._hold(), self._loop)
        self.session = self._ready.result(timeout)
        return self

    async def _hold(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with self._open_session() as session:
                self._ready.set_result(session)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def run(self, coro: Any, timeout: float = CALL_TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.run(self.session.call_tool(name, arguments or {}, **kw))

    @staticmethod
    def text(result: Any) -> str:
        """The text content of a tool result."""
        return "\n".join(getattr(block, "text", "") for block in result.content)

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._done is not None:
            with contextlib.suppress(Exception):
                self._done.result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def stdio_session(project: Path) -> Callable[[], Any]:
    """A factory of `async with` blocks yielding an initialized stdio ClientSession."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "soma.cli", "mcp", "--project", str(project)],
        env=server_env(),
        cwd=str(project),
    )

    @contextlib.asynccontextmanager
    async def open_session() -> Any:
        with open(project.parent / "server-stderr.log", "w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session

    return open_session


def http_session(url: str, token: str) -> Callable[[], Any]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    @contextlib.asynccontextmanager
    async def open_session() -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT) as client,
            streamable_http_client(url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session

    return open_session


@pytest.fixture(scope="module")
def stdio(example_project: Path) -> Iterator[SessionHarness]:
    """One `soma mcp --project <example>` process over stdio for the whole module."""
    harness = SessionHarness(stdio_session(example_project)).start()
    try:
        yield harness
    finally:
        harness.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_http_server(project: Path, port: int, token: str | None) -> subprocess.Popen[str]:
    """`soma mcp --http` as a subprocess, returned once the port accepts connections."""
    args = [
        sys.executable,
        "-m",
        "soma.cli",
        "mcp",
        "--project",
        str(project),
        "--http",
        "--port",
        str(port),
    ]
    if token is not None:
        args += ["--token", token]
    env = server_env()
    env.pop("SOMA_MCP_TOKEN", None)
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        time.sleep(0.1)
    stop_process(proc)
    raise RuntimeError("server did not start listening within 60 s")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Stop a process we started, by its PID (terminate, then kill)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (they cannot import this conftest by name)."""
    return SimpleNamespace(
        SessionHarness=SessionHarness,
        free_port=free_port,
        http_session=http_session,
        make_project=make_project,
        start_http_server=start_http_server,
        stdio_session=stdio_session,
        stop_process=stop_process,
    )
