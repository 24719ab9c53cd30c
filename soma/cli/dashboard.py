"""``soma dashboard``: optuna-dashboard on the project's study storage, bound to loopback.

Soma keeps its studies in Optuna's RDB storage (``.soma/optuna.sqlite`` unless soma.toml says
otherwise), with flat user attributes (experiment id, each metric, cache hits), so the
dashboard shows and sorts them as they are. optuna-dashboard is an extra
(``pip install 'soma-research[dashboard]'``); it is served here by a threaded wsgiref server
bound before anything is printed, so a busy port is one line, as for ``soma mcp --http``.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import ProjectDir, console, fail, state_paths

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("dashboard")
def dashboard(
    project: ProjectDir = Path("."),
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (keep 127.0.0.1 unless needed).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8080,
) -> None:
    """Open the project's studies in optuna-dashboard at http://HOST:PORT/ (Ctrl-C stops it).

    Needs the dashboard extra: pip install 'soma-research[dashboard]'."""
    try:
        import optuna_dashboard
    except ImportError:
        raise fail(
            "optuna-dashboard is not installed; install it with "
            "pip install 'soma-research[dashboard]' (or pip install optuna-dashboard)"
        ) from None
    storage = state_paths(project).optuna_path
    if not storage.is_file():
        raise fail(
            f"no studies in {project} yet ({storage} does not exist); run one with "
            "soma study run SPEC --project PROJECT"
        )
    server = _bind(host, port, optuna_dashboard.wsgi(f"sqlite:///{storage}"))
    out = console(stderr=True)
    if host not in _LOOPBACK:
        out.print(
            f"warning: bound to {host}, not loopback: anyone who can reach this port can read "
            "and annotate the project's studies",
            highlight=False,
        )
    out.print(f"optuna-dashboard on {_url(host, port)} (storage {storage})", highlight=False)
    out.print("Ctrl-C stops it.", highlight=False)
    sys.stderr.flush()
    _stop_on_signals()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _stop_on_signals() -> None:
    """Ctrl-C (and SIGTERM) stop the server even when it was started as a background job: a
    non-interactive shell starts those with SIGINT ignored, and Python then never raises
    KeyboardInterrupt, so the server could only be killed."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)


def _bind(host: str, port: int, wsgi_app: Any) -> Any:
    """A threaded wsgiref server already listening on ``host:port``; exit 1 with one line
    when the port is taken."""
    import errno
    import socket
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class _QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would bury the URL printed above

    try:
        return make_server(
            host.strip("[]"), port, wsgi_app, server_class=_Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        reason = (
            "is already in use"
            if exc.errno == errno.EADDRINUSE
            else f"cannot be bound ({exc.strerror})"
        )
        raise fail(f"{host}:{port} {reason}; choose another with --port") from None


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"
