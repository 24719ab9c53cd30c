"""Tokens: generated, stored with mode 0600, and checked against the coordinator before Ray.

Ray's token authentication (``RAY_AUTH_MODE=token``) sends ``authorization: Bearer TOKEN`` as
gRPC metadata on every call, and the GCS server's interceptor answers UNAUTHENTICATED to a
missing or wrong one. A Ray driver, though, only surfaces that as a generic ConnectionError
after ~20 s of retries. So before handing the address to Ray, Soma makes one cheap GCS call
itself (``NodeInfoGcsService/GetClusterId``) with the token and a short deadline, and turns
the status code into a clear message. No protocol of Soma's own: it is Ray's call and check.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from soma.cluster._errors import CoordinatorUnreachable, TokenRejected

__all__ = ["TOKEN_ENV", "generate_token", "read_token", "verify_token", "write_token"]

TOKEN_ENV = "SOMA_TOKEN"
_GET_CLUSTER_ID = "/ray.rpc.NodeInfoGcsService/GetClusterId"


def generate_token() -> str:
    return secrets.token_hex(32)


def write_token(path: Path, token: str) -> None:
    """Write ``token`` readable by its owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def read_token(path: Path) -> str:
    return path.read_text().strip()


def verify_token(address: str, token: str | None, timeout: float = 2.0) -> float:
    """Check ``token`` with the coordinator at ``HOST:PORT``; seconds taken, or raise.

    Raises TokenRejected (missing or wrong token) or CoordinatorUnreachable within
    ``timeout`` seconds.
    """
    import time

    import grpc

    started = time.perf_counter()
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(
            _GET_CLUSTER_ID, request_serializer=None, response_deserializer=None
        )
        try:
            call(b"", timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                what = "a wrong token" if token else "no token"
                raise TokenRejected(
                    f"the coordinator at {address} refused {what}: give the token printed by "
                    f"`soma coordinator start` with --token or ${TOKEN_ENV}"
                ) from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise CoordinatorUnreachable(
                    f"no coordinator answered at {address} within {timeout:g} s "
                    f"({code.name.lower()}): is `soma coordinator start` running there?"
                ) from None
            raise CoordinatorUnreachable(
                f"the coordinator at {address} answered {code.name}: {exc.details()}"
            ) from None
    return time.perf_counter() - started
