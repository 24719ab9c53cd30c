"""Streamable HTTP: `soma mcp --http` as a subprocess on a free 127.0.0.1 port, with a token."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

TOKEN = secrets.token_urlsafe(16)
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
CALL = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "write_filter_source", "arguments": {"path": "sneaky.py", "content": "X=1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def http_process(example_project: Path, kit: Any) -> Iterator[tuple[str, Any]]:
    """`soma mcp --http --port N --token T`, started without --host: the defaults."""
    port = kit.free_port()
    proc = kit.start_http_server(example_project, port, TOKEN)
    try:
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        kit.stop_process(proc)


@pytest.fixture(scope="module")
def http_server(http_process: tuple[str, Any]) -> str:
    return http_process[0]


def test_binds_only_the_loopback_address_by_default(http_process: tuple[str, Any]) -> None:
    import psutil

    url, proc = http_process
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    listening = [
        c.laddr
        for c in psutil.Process(proc.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening, "the server listens on no socket"
    assert {(addr.ip, addr.port) for addr in listening} == {("127.0.0.1", port)}


def test_right_token_lists_and_calls_tools(http_server: str, kit: Any) -> None:
    harness = kit.SessionHarness(kit.http_session(http_server, TOKEN)).start()
    try:
        tools = harness.run(harness.session.list_tools()).tools
        assert len(tools) == 13
        result = harness.call("list_filters", {"name_contains": "scale"})
        assert not result.is_error, harness.text(result)
        names = {f["name"] for f in result.structured_content["filters"]}
        assert {"StandardScale", "MinMaxScale", "RobustScale"} <= names
    finally:
        harness.close()


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_missing_or_wrong_token_is_401_and_runs_nothing(
    http_server: str, example_project: Path, auth: str | None
) -> None:
    headers = dict(HEADERS)
    if auth is not None:
        headers["Authorization"] = auth
    for message in (INIT, CALL):
        response = httpx2.post(http_server, json=message, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert json.loads(response.text)["error"] == "unauthorized"
    assert not (example_project / "filters" / "sneaky.py").exists()


def test_generated_token_is_printed_and_required(tmp_path: Path, kit: Any) -> None:
    project = kit.make_project(tmp_path / "p")
    port = kit.free_port()
    proc = kit.start_http_server(project, port, None)
    try:
        assert proc.stderr is not None
        text = ""
        deadline = time.monotonic() + 30
        while "token" not in text and time.monotonic() < deadline:
            text += proc.stderr.readline()
        match = re.search(r"generated token: (\S+)", text)
        assert match, text
        token = match.group(1)
        url = f"http://127.0.0.1:{port}/mcp"
        denied = httpx2.post(url, json=INIT, headers=HEADERS, timeout=10)
        assert denied.status_code == 401
        allowed: Any = httpx2.post(
            url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {token}"}, timeout=10
        )
        assert allowed.status_code == 200
        assert "soma" in allowed.text  # serverInfo of the initialize result
    finally:
        kit.stop_process(proc)


def test_regression_an_empty_token_is_generated_and_shown(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SOMA_MCP_TOKEN="" (or --token "") used to make the server generate a token it never
    # printed, so no client could ever connect.
    import uvicorn

    from soma_mcp.server import serve_http

    served: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: served.append(self.config))
    announced: list[tuple[str, str, bool]] = []
    serve_http(example_project, token="", announce=lambda *args: announced.append(args))
    [(url, token, generated)] = announced
    assert generated is True and len(token) >= 32
    assert url.startswith("http://127.0.0.1:8765/") and served[0].host == "127.0.0.1"


@pytest.mark.parametrize(
    ("auth", "allowed"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"BEARER  {TOKEN}", True),
        (f"Bearer {TOKEN}x", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        ("Bearer", False),
    ],
)
async def test_regression_bearer_scheme_is_case_insensitive(auth: str, allowed: bool) -> None:
    # RFC 9110: the auth scheme is case-insensitive. "bearer <token>" used to get 401.
    from soma_mcp._http import BearerTokenMiddleware

    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "headers": [(b"authorization", auth.encode())]}
    await BearerTokenMiddleware(app, TOKEN)(scope, receive, send)
    assert bool(reached) is allowed
    if not allowed:
        assert sent[0]["status"] == 401
