"""Streamable HTTP behind a bearer token.

Every HTTP request must carry ``Authorization: Bearer <token>``; any other request gets
``401`` before it reaches the MCP app, so no tool runs. Tokens are compared in constant
time. The server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BearerTokenMiddleware", "generate_token"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def generate_token() -> str:
    """A fresh random token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


class BearerTokenMiddleware:
    """ASGI middleware: HTTP requests without the right bearer token get 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("token: expected a non-empty bearer token")
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan events pass through
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                given = value
                break
        # The scheme is case-insensitive (RFC 9110 section 11.1); the token is not.
        scheme, _, credentials = given.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(
            credentials.strip(), self._expected
        ):
            await _unauthorized(send, "missing bearer token" if not given else "wrong token")
            return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, reason: str) -> None:
    body = json.dumps(
        {
            "error": "unauthorized",
            "error_description": f"{reason}; send 'Authorization: Bearer "
            "<token>' (printed by `soma mcp --http` at start)",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="soma"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
