"""Fuzz the MCP server over stdio: N calls with arguments drawn from the tools' JSON schemas.

One ``soma mcp`` process on a fresh copy of the digits example; every call either returns a
result or an ``is_error`` result with a short text. Counted per tool: server deaths (the
session breaks), hangs (no answer within --timeout), "failed unexpectedly" texts, schema-
breaking arguments that were accepted, and errors over 2,000 characters. The arguments come
from ``tests/mcp/schema_fuzz.py``, the generator the suite's property test uses.

    python tools/bench/fuzz_mcp.py --calls 10000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "mcp"))

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from schema_fuzz import invalid_arguments, valid_arguments, wrong_fields

MAX_ERROR_CHARS = 2000
RUNS = ("run_pipeline", "run_study")
GOOD_SPEC = "StandardScale() >> LogReg(C=1.0)"
COUNTS = ("calls", "ok", "refused", "deaths", "hangs", "unexpected", "accepted_invalid", "long")


def draw_cases(n: int, seed: int) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(tool, wrong field or None, arguments), half valid and half breaking one field."""
    from hypothesis.errors import NonInteractiveExampleWarning

    from soma_tools import TOOLS

    rng = random.Random(seed)
    plans: list[tuple[str, str | None]] = []
    for name, spec in sorted(TOOLS.items()):
        plans.append((name, None))
        plans.extend((name, field) for field in wrong_fields(spec.input_schema()))
    cases = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for i in range(n):
            name, field = rng.choice(plans) if i % 2 else (rng.choice(sorted(TOOLS)), None)
            schema = TOOLS[name].input_schema()
            strategy = (
                valid_arguments(schema) if field is None else invalid_arguments(schema, field)
            )
            arguments = strategy.example()
            if name in RUNS and field is None and rng.random() < 0.5:
                # A random spec never parses: half the valid runs get a real pipeline, so the
                # fit / score / record path is fuzzed too (with few trials, to stay quick).
                arguments["spec"] = GOOD_SPEC
                if "n_trials" in arguments:
                    arguments["n_trials"] = min(arguments["n_trials"], 2)
            cases.append((name, field, arguments))
    return cases


async def run_cases(project: Path, cases: list[Any], timeout: float) -> dict[str, Any]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "soma.cli", "mcp", "--project", str(project), "--embedder", "hashing"],
    )
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    examples: dict[str, str] = {}
    index = 0
    with Progress() as progress, open(os.devnull, "w") as devnull:
        task = progress.add_task("fuzzing soma mcp", total=len(cases))
        while index < len(cases):  # a new server after a death, counted, and go on
            async with (
                stdio_client(params, errlog=devnull) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                while index < len(cases):
                    name, field, args = cases[index]
                    index += 1
                    progress.advance(task)
                    counts = table[name]
                    counts["calls"] += 1
                    try:
                        result = await asyncio.wait_for(session.call_tool(name, args), timeout)
                    except TimeoutError:
                        counts["hangs"] += 1
                        break
                    except Exception as exc:  # the session broke: the server died
                        counts["deaths"] += 1
                        examples.setdefault(f"{name} death", f"{args!r:.200} -> {exc!r:.200}")
                        break
                    text = " ".join(getattr(c, "text", "") for c in result.content)
                    if not result.is_error:
                        counts["ok"] += 1
                        if field is not None:
                            counts["accepted_invalid"] += 1
                            examples.setdefault(f"{name}.{field} accepted", f"{args!r:.200}")
                        continue
                    counts["refused"] += 1
                    if "unexpectedly" in text:
                        counts["unexpected"] += 1
                        examples.setdefault(f"{name} unexpected", f"{args!r:.150} -> {text:.200}")
                    if len(text) > MAX_ERROR_CHARS:
                        counts["long"] += 1
                        examples.setdefault(
                            f"{name} long", f"{args!r:.300} -> {len(text):,} chars: {text:.600}"
                        )
    return {"table": table, "examples": examples}


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a hang")
    args = parser.parse_args()

    from soma.project import init_project

    console = Console(width=150)  # a table of counts: never squeezed, even in a pipe
    start = time.perf_counter()
    cases = draw_cases(args.calls, args.seed)
    drawn = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(init_project(Path(tmp) / "digits", example="digits"))
        start = time.perf_counter()
        found = asyncio.run(run_cases(project, cases, args.timeout))
        wall = time.perf_counter() - start
    table = Table(title=f"soma mcp over stdio: {args.calls:,} fuzzed calls in {wall:.0f} s")
    table.add_column("tool")
    for name in COUNTS:
        table.add_column(name.replace("_", " "), justify="right")
    total: collections.Counter[str] = collections.Counter()
    for tool, counts in sorted(found["table"].items()):
        total.update(counts)
        table.add_row(tool, *(f"{counts[c]:,}" for c in COUNTS))
    table.add_row("all", *(f"{total[c]:,}" for c in COUNTS), style="bold")
    console.print(table)
    console.print(f"arguments drawn in {drawn:.0f} s; {args.calls / wall:.0f} calls/s")
    for what, example in found["examples"].items():
        console.print(f"[red]{what}[/]: {example}", soft_wrap=True)
    return {"total": dict(total), "wall_s": wall}


if __name__ == "__main__":
    main()
