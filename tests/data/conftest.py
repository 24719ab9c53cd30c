"""A real S3-compatible server (moto's server mode) on 127.0.0.1, started as a subprocess
and stopped by its process id. Its request log (one line per HTTP request) lets tests
count the objects a store really fetched."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KEY, SECRET = "testing-key", "testing-secret-value-1234"


@dataclass
class MotoServer:
    endpoint: str
    log: Path

    def requests(self) -> list[str]:
        """The request lines logged so far, like 'GET /bucket/key HTTP/1.1'."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))  # colours
        return [line.split('"')[1] for line in text.splitlines() if line.count('"') >= 2]

    def gets(self, needle: str) -> int:
        return sum(1 for r in self.requests() if r.startswith("GET ") and needle in r)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    yield from _serve(tmp_path_factory, {})


@pytest.fixture(scope="module")
def moto_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server checking credentials after its first 3 requests (s3fs making a bucket)."""
    yield from _serve(tmp_path_factory, {"INITIAL_NO_AUTH_ACTION_COUNT": "3"})


def _serve(factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[MotoServer]:
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    port = _free_port()
    log = factory.mktemp("moto") / "requests.log"
    binary = Path(sys.executable).with_name("moto_server")
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield MotoServer(endpoint, log)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


_bucket_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    """A fresh bucket per test."""
    name = f"soma-test-{next(_bucket_counter)}-{os.getpid()}"
    make_bucket(moto, name)
    return name


def make_bucket(server: MotoServer, name: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(
        key=KEY, secret=SECRET, endpoint_url=server.endpoint, skip_instance_cache=True
    )
    fs.mkdir(name)
