"""Forward overhead per node: Soma against somatize 1.0.1 and scikit-learn's Pipeline.

Graphs of trivial filters (``x + 1``): chains of 10, 100, 1,000 and 10,000 nodes, and a
fan-out of 100 (one root feeding 100 leaves). Each cell is the best of a few rounds of
the wall time of one ``forward`` divided by the node count, in microseconds.

- soma: ``Graph.forward`` without a cache; "soma cached": a warm ``Cache`` on disk with a
  large memory tier (every node a hit, keys recomputed each call).
- somatize: ``Graph.somatize(expr).forward(x)``; "somatize cached": ``.frozen().cached()``
  with a ``store`` folder, warm. Its cost per node grows with the chain length, so sizes
  whose projected time is beyond the budget are skipped (shown as ``skip``).
- sklearn: ``Pipeline`` of trivial transformers, ``transform(x)`` (chains only).

Run: ``python tools/bench/bench_runtime.py`` (``--quick`` for a short run, ``--full`` to
let somatize try larger chains).
"""

from __future__ import annotations

import argparse
import operator
import sys
import tempfile
import time
from collections.abc import Callable
from functools import reduce
from typing import Any

from rich.console import Console
from rich.table import Table

from soma import Cache, Filter, Graph


class Inc(Filter):
    def forward(self, x, state):
        return x + 1


def _measure(call: Callable[[], Any], nodes: int, budget_s: float) -> float:
    """Microseconds per node: the best of a few rounds of repeated calls (like timeit, the
    minimum is the least disturbed by other load on the machine)."""
    call()  # warm up (compiles plans, fills caches)
    started = time.perf_counter()
    call()
    once = time.perf_counter() - started
    reps = max(1, int(budget_s / 5 / max(once, 1e-9)))
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(reps):
            call()
        rounds.append((time.perf_counter() - started) / reps)
        if once * reps * len(rounds) > budget_s * 2:
            break
    return min(rounds) / nodes * 1e6


def soma_cells(shape: str, n: int, budget: float, cache_dir: str) -> tuple[float, float]:
    expr = _soma_expr(shape, n)
    plain = Graph.somatize(expr)
    off = _measure(lambda: plain.forward(0), _count(shape, n), budget)
    cached = Graph.somatize(expr, cache=Cache(cache_dir, memory_items=4 * n + 16))
    on = _measure(lambda: cached.forward(0), _count(shape, n), budget)
    hits = cached.last_run.cache_hits if cached.last_run else 0
    assert hits == _count(shape, n), f"expected every node cached, got {hits}"
    return off, on


def _count(shape: str, n: int) -> int:
    return n if shape == "chain" else n + 1


def _soma_expr(shape: str, n: int) -> Any:
    if shape == "chain":
        return reduce(operator.rshift, [Inc() for _ in range(n)])
    return Inc() >> reduce(operator.or_, [Inc() for _ in range(n)])


def somatize_cells(
    shape: str, n: int, budget: float, cache_dir: str, last: dict[str, float]
) -> tuple[float | None, float | None, str]:
    try:
        from somatize import Graph as SGraph
        from somatize import Node
    except ImportError:
        return None, None, "not installed (pip install somatize==1.0.1)"

    class SInc(Node):
        def forward(self, x, ctx):
            return x + 1

    def expr() -> Any:
        if shape == "chain":
            return reduce(operator.rshift, [SInc() for _ in range(n)])
        return SInc() >> reduce(operator.or_, [SInc() for _ in range(n)])

    # somatize's forward grows ~cubically with chain length: project from the last size.
    if shape == "chain" and "n" in last:
        projected = last["seconds"] * (n / last["n"]) ** 3
        if projected > budget * 4:
            return None, None, f"skipped: projected {projected:,.0f} s per forward"
    started = time.perf_counter()
    graph = SGraph.somatize(expr())
    graph.forward(0)
    once = time.perf_counter() - started
    if shape == "chain":
        last.update(n=n, seconds=once)
    off = _measure(lambda: graph.forward(0), _count(shape, n), budget)
    cached_graph = SGraph.somatize(expr().frozen().cached())
    on = _measure(lambda: cached_graph.forward(0, store=cache_dir), _count(shape, n), budget)
    return off, on, ""


def sklearn_cell(shape: str, n: int, budget: float) -> float | None:
    if shape != "chain":
        return None
    import numpy as np
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import Pipeline

    class SkInc(TransformerMixin, BaseEstimator):
        def fit(self, x, y=None):
            self.fitted_ = True  # what check_is_fitted looks for
            return self

        def transform(self, x):
            return x + 1

    pipe = Pipeline([(f"s{i}", SkInc()) for i in range(n)]).fit(np.zeros((1, 1)))
    x = np.zeros((1, 1))
    return _measure(lambda: pipe.transform(x), n, budget)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short budgets (a rough table)")
    parser.add_argument("--full", action="store_true", help="let somatize try longer chains")
    args = parser.parse_args(argv)
    budget = 0.3 if args.quick else 1.0
    somatize_budget = 60.0 if args.full else (3.0 if args.quick else 10.0)
    console = Console(width=max(Console().width, 130))
    cases = [("chain", 10), ("chain", 100), ("chain", 1000), ("chain", 10000), ("fan-out", 100)]
    table = Table(title="forward overhead, µs per node (lower is better)", title_justify="left")
    for column in (
        "graph",
        "soma",
        "soma cached",
        "somatize",
        "somatize cached",
        "sklearn Pipeline",
        "somatize / soma",
        "sklearn / soma",
    ):
        table.add_column(column, justify="right" if column != "graph" else "left")
    notes: list[str] = []
    last: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index, (shape, n) in enumerate(cases):
            label = f"{shape} {n:,}"
            console.print(f"measuring {label} ...", style="dim")
            off, on = soma_cells(shape, n, budget, f"{tmp}/soma{index}")
            s_off, s_on, note = somatize_cells(
                shape, n, somatize_budget, f"{tmp}/somatize{index}", last
            )
            if note:
                notes.append(f"somatize, {label}: {note}")
            sk = sklearn_cell(shape, n, budget)
            table.add_row(
                label,
                _fmt(off),
                _fmt(on),
                _fmt(s_off, "skip" if note else "-"),
                _fmt(s_on, "skip" if note else "-"),
                _fmt(sk),
                _ratio(s_off, off),
                _ratio(sk, off),
            )
    console.print(table)
    for note in notes:
        console.print(f"[dim]{note}[/]")
    console.print(
        "[dim]soma cached = warm Cache on disk with a memory tier large enough for the graph; "
        "somatize cached = .frozen().cached() with a store folder; ratios use soma without a "
        f"cache. Python {sys.version.split()[0]}.[/]"
    )


def _fmt(value: float | None, missing: str = "-") -> str:
    if value is None:
        return missing
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def _ratio(peer: float | None, ours: float) -> str:
    return "-" if peer is None else f"{peer / ours:,.1f}x"


if __name__ == "__main__":
    main()
