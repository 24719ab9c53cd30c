"""Helpers shared by the agent tests: a scripted LLM server, canned replies, a slow model."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, Any], dict[str, str]]

SLOW_MODEL = '''
"""A deliberately slow classifier, so a test can kill the agent in the middle of a fit."""

import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from soma import Filter, search


class SlowLogReg(Filter):
    """Logistic regression that takes its time (classifier)."""

    _soma_role = "model"
    C = search(1e-2, 1e2, log=True, default=1.0)
    delay = 1.2

    def fit(self, x, y=None):
        time.sleep(self.delay)
        return LogisticRegression(C=self.C, max_iter=300).fit(np.asarray(x), y)

    def forward(self, x, state):
        return state.predict(np.asarray(x))
'''


def kinds(kb: Any, run_id: str) -> list[str]:
    return [e.kind for e in kb.journal(run_id)]


class ScriptedServer:
    """A local HTTP server that answers POSTs with scripted replies, in order.

    Each script item is ``(status, json_body, headers)`` or a callable taking the request's
    JSON and returning one; when the script runs out, ``default`` answers.
    """

    def __init__(self, default: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.script: list[Reply | Callable[[dict[str, Any]], Reply]] = []
        self.requests: list[dict[str, Any]] = []
        self.default = default
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(
                    {"path": self.path, "body": body, "headers": dict(self.headers)}
                )
                item: Any = server.script.pop(0) if server.script else server.default
                if item is None:
                    status, payload, headers = 500, {"error": "script exhausted"}, {}
                else:
                    status, payload, headers = item(body) if callable(item) else item
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def anthropic_reply(
    name: str, tool_input: dict[str, Any], *, in_tokens: int = 1000, out_tokens: int = 100
) -> Reply:
    return (
        200,
        {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": tool_input}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens},
        },
        {},
    )


def openai_reply(
    name: str, arguments: str, *, in_tokens: int = 1000, out_tokens: int = 100
) -> Reply:
    return (
        200,
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": f"call_{name}",
                                "type": "function",
                                "function": {"name": name, "arguments": arguments},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {
                "prompt_tokens": in_tokens,
                "completion_tokens": out_tokens,
                "total_tokens": in_tokens + out_tokens,
            },
        },
        {},
    )


VALID_PROPOSAL = {
    "statement": "A small C makes logistic regression generalise better on digits.",
    "rationale": "No result yet; a regularised linear model is a cheap baseline.",
    "spec": "StandardScale() >> LogReg(C=0.5)",
    "action": "draft",
    "expected_effect": "improve",
}


REGRESSION_DATA = """
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split


def load():
    x, y = load_diabetes(return_X_y=True)
    x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=0.4, random_state=0)
    x_va, x_te, y_va, y_te = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0)
    return {"train": (x_tr, y_tr), "valid": (x_va, y_va), "test": (x_te, y_te)}
"""

REGRESSION_MODELS = '''
import numpy as np
from sklearn.linear_model import Ridge as _Ridge
from sklearn.neighbors import KNeighborsRegressor

from soma import Filter, search


class Ridge(Filter):
    """Linear least squares with an L2 penalty (regression)."""

    _soma_role = "model"
    alpha = search(1e-3, 1e3, log=True, default=1.0)

    def fit(self, x, y=None):
        return _Ridge(alpha=self.alpha).fit(x, y)

    def forward(self, x, state):
        return state.predict(np.asarray(x))


class KNNReg(Filter):
    """k-nearest-neighbours average (regression)."""

    _soma_role = "model"
    n_neighbors = search(1, 30, default=5)

    def fit(self, x, y=None):
        return KNeighborsRegressor(n_neighbors=self.n_neighbors).fit(x, y)

    def forward(self, x, state):
        return state.predict(np.asarray(x))
'''


def regression_project(folder: Any, metric: str) -> Any:
    """A small diabetes project (Ridge, KNN; scalers; no reducers) with ``metric`` first."""
    from soma.project import init_project

    root = init_project(folder, example="digits")
    (root / "data.py").write_text(REGRESSION_DATA, encoding="utf-8")
    (root / "filters" / "models.py").write_text(REGRESSION_MODELS, encoding="utf-8")
    (root / "filters" / "reducers.py").unlink()
    directions = {"r2": "maximize", "mse": "minimize"}
    other = "mse" if metric == "r2" else "r2"
    toml = root / "soma.toml"
    text = toml.read_text(encoding="utf-8")
    head, tail = text.split("[[metric]]", 1)[0], text.split("[paths]", 1)[1]
    metrics = "".join(
        f'[[metric]]\nname = "{m}"\ndirection = "{directions[m]}"\n\n' for m in (metric, other)
    )
    toml.write_text(head + metrics + "[paths]" + tail, encoding="utf-8")
    return root
