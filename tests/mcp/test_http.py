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
def http_server(example_project: Path, kit: Any) -> Iterator[str]:
    port = kit.free_port()
    proc = kit.start_http_server(example_project, port, TOKEN)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        kit.stop_process(proc)


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
