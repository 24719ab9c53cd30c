"""What isolating user code costs: MCP ``run_pipeline`` with filters in worker processes vs
in the server's own process.

Two ``soma mcp`` servers over stdio (the SDK's real client) on two copies of the digits
example project: one with ``[limits] workers = 0`` (user code runs in the server, as before
issue 18) and one with the default worker processes. Each runs the same pipeline once to
fill its cache, then rounds alternate between them (so machine load hits both alike): every
round times ``--calls`` ``run_pipeline`` calls of the cached pipeline on one server. Also
timed: the first call on a fresh server (a worker starts, loads the data) and the call after
a worker was killed by ``os._exit`` (a fresh worker again).

    .venv/bin/python tools/bench/bench_isolation.py            # 6 rounds of 15 calls
    .venv/bin/python tools/bench/bench_isolation.py --quick    # 2 rounds of 5 calls
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SPEC = "StandardScale() >> PCA(n_components=16) >> LogReg(C=1.0)"
GOAL_RATIO = 1.5
EXIT_FILTER = """
import os
from soma import Filter


class HardExit(Filter):
    def fit(self, x, y=None):
        os._exit(9)

    def forward(self, x, state=None):
        return x
"""


def make_project(parent: Path, name: str, workers: int | None) -> Path:
    from soma.project import init_project

    root = Path(init_project(parent / name, example="digits"))
    (root / "filters" / "hard_exit.py").write_text(EXIT_FILTER)
    if workers is not None:
        with open(root / "soma.toml", "a") as f:
            f.write(f"\n[limits]\nworkers = {workers}\n")
    return root


class Server:
    """One `soma mcp` over stdio, its session held open in this event loop."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stack = contextlib.AsyncExitStack()
        self.session: Any = None

    async def __aenter__(self) -> Server:
        from mcp import ClientSession, StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "soma.cli", "mcp", "--project", str(self.root), "--embedder", "hashing"],
        )
        devnull = self._stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115 - held by the stack
        read, write = await self._stack.enter_async_context(stdio_client(params, errlog=devnull))
        self.session = await self._stack.enter_async_context(ClientSession(read, write))
        await self.session.initialize()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()

    async def run(self, spec: str = SPEC) -> tuple[float, Any]:
        started = time.perf_counter()
        result = await self.session.call_tool("run_pipeline", {"spec": spec})
        return (time.perf_counter() - started) * 1000, result


async def bench(rounds: int, calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        roots = {
            "in-process (workers = 0)": make_project(Path(tmp), "inproc", 0),
            "worker processes (default)": make_project(Path(tmp), "isolated", None),
        }
        out: dict[str, Any] = {name: {"warm": []} for name in roots}
        async with contextlib.AsyncExitStack() as stack:
            servers = {n: await stack.enter_async_context(Server(r)) for n, r in roots.items()}
            for name, server in servers.items():
                ms, result = await server.run()
                assert not result.is_error, result
                out[name]["first"] = ms
            for r in range(rounds):
                order = list(servers.items())
                if r % 2:
                    order.reverse()
                for name, server in order:
                    for _ in range(calls):
                        ms, result = await server.run()
                        assert not result.is_error and result.structured_content["cache_hits"]
                        out[name]["warm"].append(ms)
            server = servers["worker processes (default)"]
            ms, result = await server.run("HardExit() >> LogReg()")
            assert result.is_error
            out["worker processes (default)"]["crash"] = ms
            ms, result = await server.run()
            assert not result.is_error
            out["worker processes (default)"]["after crash"] = ms
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 calls")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=15, help="calls per server per round")
    args = parser.parse_args()
    rounds, calls = (2, 5) if args.quick else (args.rounds, args.calls)
    load = os.getloadavg()
    out = asyncio.run(bench(rounds, calls))
    print(f"MCP stdio run_pipeline, digits, cached '{SPEC}'")
    print(f"{rounds} alternating rounds x {calls} calls; load average {load[0]:.2f}")
    print()
    print("| server | warm p50 ms | warm best ms | warm p95 ms | first call ms |")
    print("|---|---|---|---|---|")
    for name, row in out.items():
        warm = np.array(row["warm"])
        print(
            f"| {name} | {np.percentile(warm, 50):.1f} | {warm.min():.1f} | "
            f"{np.percentile(warm, 95):.1f} | {row['first']:.0f} |"
        )
    base, iso = (np.array(out[n]["warm"]) for n in out)
    ratio = float(np.percentile(iso, 50) / np.percentile(base, 50))
    best = float(iso.min() / base.min())
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print()
    print(
        f"isolated / in-process: p50 {ratio:.2f}x, best {best:.2f}x (goal <= {GOAL_RATIO}x: "
        f"{verdict})"
    )
    row = out["worker processes (default)"]
    print(
        f"a filter calling os._exit: error in {row['crash']:.0f} ms; the next call (a fresh "
        f"worker loads the data) {row['after crash']:.0f} ms"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
