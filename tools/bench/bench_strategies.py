"""Training strategies side by side: DataParallel vs Local, communication, FedAvg rounds.

1. DataParallel on 2 worker processes against Local (this process) for a compute-heavy
   fit: a torch MLP (``TorchModule``, 2 x 256 Tanh layers, full-batch SGD) on 40,000 x 32
   rows for ``--epochs`` epochs. One BLAS / OpenMP thread per process on both sides (the
   environment is set before numpy and torch load; ``torch.set_num_threads(1)`` here, and
   the workers start that way). The worker pool is started and warmed once first (process
   start and the torch import are a one-time cost, reported apart); timed rounds alternate
   Local and DataParallel, each side's best and median kept. Both aggregations.
2. Communication overhead per round: from the DataParallel fit report, the bytes that
   crossed per round and the round wall time minus the slowest replica's compute.
3. FedAvg rounds to a target loss vs centralised training: a linear model on 20,000 x 16
   rows sorted by one feature (4 non-IID clients, 5 local steps per round), target = the
   centralised optimum's loss x 1.01; the rounds FedAvg (and FedProx) need against the
   full-batch steps centralised gradient descent needs at the same learning rate.

Before and after part 1 it measures the *parallel capacity*: how many cores two busy processes
get together (2.0 on an idle 2-core machine, 1.0 when another job holds a core): on a shared
host it says how much parallelism there was to gain around the run (the load moves during
it, so it is a reading, not a bound).

Run: ``python tools/bench/bench_strategies.py`` (about 1.5 min on 2 cores at load 2-3;
``--quick``: fewer epochs and rows, about 20 s).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy / torch load: one BLAS thread on both sides

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from soma import Graph  # noqa: E402
from soma.training import (  # noqa: E402
    DataParallel,
    Federated,
    LinearModel,
    TorchModule,
    fedprox,
)

torch.set_num_threads(1)


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(4_000_000): x += i\n" + (
    "print(time.perf_counter() - t)"
)


def parallel_capacity() -> float:
    """How many cores two busy processes get together right now (2.0 on an idle 2-core
    machine, 1.0 when another job holds a core), a reading of what a shared host offers."""
    import subprocess
    import sys

    def spin(n: int) -> float:
        procs = [
            subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True)
            for _ in range(n)
        ]
        return max(float(p.communicate()[0]) for p in procs)

    alone = min(spin(1) for _ in range(2))
    together = min(spin(2) for _ in range(2))
    return 2.0 * alone / together


def _mlp_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 32)).astype(np.float32)
    y = np.sin(x[:, :4].sum(axis=1)) + 0.1 * x[:, 4]
    return x, y.astype(np.float32)


def bench_data_parallel(n: int, epochs: int, rounds: int) -> list[str]:
    x, y = _mlp_data(n)
    mlp = TorchModule(hidden=(256, 256), epochs=epochs, lr=0.05, seed=0)
    lines = []
    t0 = time.perf_counter()
    warm = TorchModule(hidden=(8,), epochs=1)
    Graph.somatize(warm, strategy=DataParallel(num_replicas=2)).fit(x[:64], y[:64])
    lines.append(f"worker pool start + torch import (once): {time.perf_counter() - t0:.2f} s")
    lines.append("")
    lines.append(
        f"| fit ({n:,} x 32 rows, MLP 2x256, {epochs} epochs) | best s | median s "
        "| speed-up vs Local (best) |"
    )
    lines.append("|---|---|---|---|")
    times: dict[str, list[float]] = {"Local": [], "allreduce": [], "parameter_server": []}
    reports = {}
    for _ in range(rounds):
        for name in times:
            graph = Graph.somatize(mlp)
            if name != "Local":
                graph = graph.with_strategy(DataParallel(num_replicas=2, aggregation=name))
            t = time.perf_counter()
            graph.fit(x, y)
            times[name].append(time.perf_counter() - t)
            if name != "Local":
                reports[name] = graph.strategy.reports["torch_module"]
    base = min(times["Local"])
    for name, values in times.items():
        label = "Local (1 process)" if name == "Local" else f"DataParallel(2, {name})"
        lines.append(
            f"| {label} | {min(values):.2f} | {statistics.median(values):.2f} | "
            f"{base / min(values):.2f}x |"
        )
    lines.append("")
    lines.append(
        "| communication per round | bytes moved | overhead s (wall - slowest compute) | round s |"
    )
    lines.append("|---|---|---|---|")
    for name, report in reports.items():
        lines.append(
            f"| DataParallel(2, {name}) | {report.bytes_per_round:,.0f} | "
            f"{report.overhead_per_round_s * 1e3:.2f} ms | "
            f"{statistics.median(report.round_seconds) * 1e3:.1f} ms |"
        )
        lines.append(f"| (shards placed once: {report.setup_bytes:,} bytes) | | | |")
    return lines


def bench_fedavg(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 16))
    y = x @ rng.normal(size=16) + 0.5 + 0.1 * rng.normal(size=n)
    order = np.argsort(x[:, 0])
    x, y = x[order], y[order]
    lr = 0.1
    model = LinearModel(lr=lr)
    optimum = model.loss_value(x, y, LinearModel(lr=0.5, epochs=2000).fit(x, y))
    target = optimum * 1.01
    state = model.init_state(x, y)
    steps = 0
    while model.loss_value(x, y, state) > target and steps < 10_000:
        state = model.partial_fit(x, y, state, 1)
        steps += 1
    lines = [
        f"target loss {target:.5f} (centralised optimum {optimum:.5f} x 1.01), lr {lr}, "
        f"{n:,} x 16 rows sorted by x0 (non-IID)",
        "",
        "| training | rounds / steps to target | seconds |",
        "|---|---|---|",
        f"| centralised full-batch GD | {steps} steps | - |",
    ]
    for label, aggregation in (("FedAvg", "fedavg"), ("FedProx(mu=0.01)", fedprox(0.01))):
        strategy = Federated(
            num_clients=4, rounds=60, local_steps=5, aggregation=aggregation, track_loss=True
        )
        t = time.perf_counter()
        Graph.somatize(model, strategy=strategy).fit(x, y)
        seconds = time.perf_counter() - t
        losses = strategy.reports["linear_model"].losses
        reached = next((i + 1 for i, loss in enumerate(losses) if loss <= target), None)
        text = f"{reached} rounds (x 5 local steps, 4 clients)" if reached else "not in 60 rounds"
        lines.append(f"| {label} | {text} | {seconds:.2f} (60 rounds) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    n = 10_000 if args.quick else 40_000
    epochs = args.epochs or (5 if args.quick else 20)
    rounds = 2 if args.quick else 3
    print(f"cores available: {len(os.sched_getaffinity(0))}, load avg {os.getloadavg()[0]:.2f}")
    print(f"parallel capacity before: {parallel_capacity():.2f} cores for two busy processes")
    print("\n## 1-2. DataParallel vs Local, communication\n")
    print("\n".join(bench_data_parallel(n, epochs, rounds)))
    print(
        f"\nparallel capacity after: {parallel_capacity():.2f} cores for two busy processes, "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    print("\n## 3. FedAvg rounds to a target loss\n")
    print("\n".join(bench_fedavg(5_000 if args.quick else 20_000)))


if __name__ == "__main__":
    main()
