"""Tool-call round trips of Soma's MCP server: in-process, in-memory client, stdio and HTTP.

Seeds an example project's knowledge base with N experiments (default 10,000) whose
embeddings are synthetic (seeded random unit vectors stored under the default embedder's
name, so seeding takes seconds instead of minutes of MiniLM encoding; the server still
embeds every query with the real all-MiniLM-L6-v2). Then it times, per transport:

* ``list_filters``;
* ``query_knowledge_base`` with text (semantic search; includes embedding the query) and
  without (filters only: line + status);
* ``get_trajectory`` on one research line.

Query embedding is kept apart two ways: the MiniLM encoding of the query is timed alone,
and the text query is also timed against servers started with ``--embedder hashing``
(a model-free embedder, ~0.1 ms), which is the round trip excluding query embedding. The
peers, side by side: the plain Python call of the tool function (no transport: the floor),
the SDK's in-memory ``Client``, stdio and streamable HTTP.

    .venv/bin/python tools/bench/bench_mcp.py            # 10k experiments, 200 calls each
    .venv/bin/python tools/bench/bench_mcp.py --quick    # 2k experiments, 50 calls each
    .venv/bin/python tools/bench/bench_mcp.py --full     # 10k experiments, 1000 calls each
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# As `soma mcp` does for its own process: idle OpenMP threads must not spin (see soma_mcp/cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

QUERY = "PCA with fewer components and a stronger regularised logistic regression"
GOAL_P50_MS = 5.0


class SyntheticEmbedder:
    """Seeded random unit vectors, filed under the default embedder's name (seeding only)."""

    def __init__(self, name: str, dim: int, seed: int = 0) -> None:
        self.name, self.dim = name, dim
        self._rng = np.random.default_rng(seed)

    def embed(self, texts: list[str]) -> np.ndarray:
        v = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True))


def seed_project(root: Path, n: int, n_lines: int) -> tuple[Path, str]:
    """An example project whose KB holds ``n`` experiments over ``n_lines`` lines."""
    from soma.knowledge import Experiment, KnowledgeBase, MiniLMEmbedder
    from soma.project import init_project, load_project

    project = load_project(init_project(root / "bench", example="digits"))
    real = MiniLMEmbedder()
    kb = KnowledgeBase(project.kb_path, embedder=SyntheticEmbedder(real.name, real.dim))
    rng = np.random.default_rng(1)
    lines = [f"line-{i}" for i in range(n_lines)]
    for name in lines:
        kb.create_line(name, metric="accuracy", direction="maximize")
    scalers = ["StandardScale", "MinMaxScale", "RobustScale"]
    batch: list[Experiment] = []
    for i in range(n):
        comps = int(rng.integers(2, 64))
        c = float(10 ** rng.uniform(-2, 2))
        batch.append(
            Experiment(
                name=f"exp {i}",
                hypothesis=f"PCA({comps}) with C={c:.3g} beats the baseline",
                line=lines[i % n_lines],
                pipeline_summary=(
                    f"{scalers[i % 3]} >> PCA(n_components={comps}) >> LogReg(C={c:.3g})"
                ),
                params={"pca.n_components": comps, "log_reg.C": c},
                metrics={"accuracy": float(rng.uniform(0.85, 0.99))},
                status="ok" if i % 17 else "failed",
                origin="agent",
            )
        )
        if len(batch) == 1000:
            kb.record_many(batch)
            batch = []
    if batch:
        kb.record_many(batch)
    kb.save_index()
    kb.close()
    return project.root, lines[0]


TEXT_CASE = "query_knowledge_base (text)"


def cases(line: str, only: str | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    every = {
        "list_filters": ("list_filters", {}),
        "query_knowledge_base (text)": ("query_knowledge_base", {"text": QUERY, "k": 10}),
        "query_knowledge_base (filters)": (
            "query_knowledge_base",
            {"research_line": line, "status": "ok", "k": 10},
        ),
        "get_trajectory": ("get_trajectory", {"research_line": line}),
    }
    return {k: v for k, v in every.items() if only is None or k == only}


async def time_calls(
    call: Callable[[str, dict[str, Any]], Awaitable[Any]], line: str, n: int, only: str | None
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for label, (name, args) in cases(line, only).items():
        for _ in range(3):  # warm up: KB, index, embedder, discovery cache
            await call(name, args)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            result = await call(name, args)
            times.append((time.perf_counter() - t0) * 1000)
            if getattr(result, "is_error", False):
                raise RuntimeError(f"{name} failed: {result.content}")
        out[label] = times
    return out


def bench_direct(
    root: Path, line: str, n: int, embedder: str = "default", only: str | None = None
) -> dict[str, list[float]]:
    from soma_tools import TOOLS, ToolContext

    ctx = ToolContext(root, embedder=embedder)

    async def call(name: str, args: dict[str, Any]) -> Any:
        return TOOLS[name].invoke(ctx, args)

    try:
        return asyncio.run(time_calls(call, line, n, only))
    finally:
        ctx.close()


def bench_in_memory(
    root: Path, line: str, n: int, embedder: str = "default", only: str | None = None
) -> dict[str, list[float]]:
    from mcp import Client

    from soma_mcp.server import create_server
    from soma_tools import ToolContext

    async def run() -> dict[str, list[float]]:
        server = create_server(ToolContext(root, embedder=embedder))
        async with Client(server) as client:
            return await time_calls(client.call_tool, line, n, only)

    return asyncio.run(run())


def server_args(root: Path, embedder: str) -> list[str]:
    return ["-m", "soma.cli", "mcp", "--project", str(root), "--embedder", embedder]


def bench_stdio(
    root: Path, line: str, n: int, embedder: str = "default", only: str | None = None
) -> dict[str, list[float]]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=server_args(root, embedder))

    async def run() -> dict[str, list[float]]:
        with open(os.devnull, "w") as devnull:
            async with (
                stdio_client(params, errlog=devnull) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await time_calls(session.call_tool, line, n, only)

    return asyncio.run(run())


def bench_http(
    root: Path, line: str, n: int, embedder: str = "default", only: str | None = None
) -> dict[str, list[float]]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_urlsafe(16)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "soma.cli",
            "mcp",
            "--project",
            str(root),
            "--http",
            "--port",
            str(port),
            "--token",
            token,
            "--embedder",
            embedder,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)

        async def run() -> dict[str, list[float]]:
            headers = {"Authorization": f"Bearer {token}"}
            url = f"http://127.0.0.1:{port}/mcp"
            async with (
                httpx2.AsyncClient(headers=headers, timeout=120) as client,
                streamable_http_client(url, http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await time_calls(session.call_tool, line, n, only)

        return asyncio.run(run())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def embed_ms(n: int) -> list[float]:
    from soma.knowledge import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.embed([QUERY])  # load the model
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        embedder.embed([QUERY])
        times.append((time.perf_counter() - t0) * 1000)
    return times


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def cell(values: list[float] | None) -> str:
    return "-" if not values else f"{pct(values, 50):.2f} / {pct(values, 95):.2f}"


TRANSPORTS: list[tuple[str, Callable[..., dict[str, list[float]]]]] = [
    ("python call", bench_direct),
    ("in-memory Client", bench_in_memory),
    ("stdio", bench_stdio),
    ("streamable HTTP", bench_http),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2k experiments, 50 calls a tool")
    mode.add_argument("--full", action="store_true", help="10k experiments, 1000 calls a tool")
    parser.add_argument("--experiments", type=int, help="experiments in the KB")
    parser.add_argument("--lines", type=int, default=10, help="research lines (default 10)")
    parser.add_argument("--calls", type=int, help="timed calls per tool and transport")
    args = parser.parse_args()
    n_exp = args.experiments or (2_000 if args.quick else 10_000)
    calls = args.calls or (50 if args.quick else 1000 if args.full else 200)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    results: dict[str, dict[str, list[float]]] = {}
    hashing: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="soma-bench-mcp-") as tmp:
        t0 = time.perf_counter()
        root, line = seed_project(Path(tmp), n_exp, args.lines)
        console.print(
            f"seeded {n_exp} experiments over {args.lines} lines "
            f"({n_exp // args.lines} per line) in {time.perf_counter() - t0:.1f} s; "
            f"{calls} timed calls per tool and transport; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        for label, fn in TRANSPORTS:
            t0 = time.perf_counter()
            results[label] = fn(root, line, calls)
            hashing[label] = fn(root, line, calls, "hashing", TEXT_CASE)[TEXT_CASE]
            console.print(f"  {label}: {time.perf_counter() - t0:.1f} s")
        embedding = embed_ms(calls)

    table = Table(title=f"Tool-call round trip in ms, p50 / p95 (KB of {n_exp} experiments)")
    table.add_column("tool")
    for label in results:
        table.add_column(label, justify="right")
    table.add_column("stdio ÷ python (p50)", justify="right")
    rows = {case: {label: results[label][case] for label in results} for case in cases(line)}
    rows["query_knowledge_base (text, hashing embedder)"] = hashing
    for case, by_label in rows.items():
        ratio = pct(by_label["stdio"], 50) / pct(by_label["python call"], 50)
        table.add_row(case, *[cell(by_label[label]) for label in results], f"{ratio:.1f}×")
    table.add_row("MiniLM query embedding alone", cell(embedding), *[""] * len(results))
    console.print(table)
    stdio = {case: pct(by_label["stdio"], 50) for case, by_label in rows.items()}
    excluded = [c for c in stdio if c != TEXT_CASE]
    worst = max(excluded, key=stdio.__getitem__)
    verdict = "met" if stdio[worst] <= GOAL_P50_MS else "NOT met"
    console.print(
        f"goal p50 <= {GOAL_P50_MS} ms over stdio excluding query embedding: {verdict} "
        f"(slowest: {worst}, {stdio[worst]:.2f} ms)"
    )


if __name__ == "__main__":
    main()
