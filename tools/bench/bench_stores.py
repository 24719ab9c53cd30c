"""Data stores side by side: partial Zarr reads, S3 throughput, streaming.

1. Reading 1 % of the rows (one contiguous block, at 5 offsets) of a >= 1 GiB float32 Zarr
   array (4,194,304 x 64, zstd level 1 + CRC32C, ~1 MiB chunks): ``ZarrStore.get_rows``
   against raw ``zarr`` indexing of the same array (opened once, like the store), and
   against reading it whole. The array is written once (random chunks, appended in 64 MiB
   pieces) and kept under ``/tmp/soma-bench-stores`` for later runs.
2. S3 put/get throughput of a 64 MiB float32 array on a local moto server (started here,
   stopped by PID): ``S3Store.put/get`` (npy encoding, SHA-256 and block checksums) against
   raw ``s3fs`` (its default settings) ``pipe_file`` of the npy bytes made beforehand, and
   ``np.save`` + ``pipe_file``; ``cat_file`` + ``np.load``. 9 alternating rounds, each
   side's median and best.
3. Streaming forward over 10,000,000 x 4 float64 rows (chunks of 100,000 generated on the
   fly) through a fitted two-node graph, against ``forward`` on all rows in memory; peak
   traced memory (tracemalloc, numpy buffers included) of each.

Run: ``python tools/bench/bench_stores.py`` (``--quick``: 256 MiB array, 1M stream rows).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from soma import Filter, Graph
from soma.data import GeneratorChunks, Stream

CACHE_ROOT = Path("/tmp/soma-bench-stores")


def _median_time(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _interleaved(calls: list[Callable[[], Any]], repeats: int) -> list[tuple[float, float]]:
    """(median, best) time of each call, the calls run in turn ``repeats`` times: the
    host's load (2 shared cores, moto on the same machine) weighs on every side alike."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for call, found in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            found.append(time.perf_counter() - started)
    return [(statistics.median(found), min(found)) for found in times]


# -- 1. partial Zarr reads -------------------------------------------------------------------


def bench_zarr(rows: int) -> dict[str, float]:
    import zarr

    from soma.data.zarr import ZarrStore

    root = CACHE_ROOT / f"zarr-{rows}"
    marker = root / "complete"
    store = ZarrStore(str(root), level=1)
    if not marker.exists():
        print(f"writing the {rows * 256 / 2**30:.2f} GiB array once under {root} ...", flush=True)
        piece = 1 << 18  # 64 MiB of rows
        rng = np.random.default_rng(0)
        block = rng.random((piece, 64), dtype=np.float32)
        store.put(block, "big")
        for start in range(piece, rows, piece):
            store.append("big", np.roll(block, start // piece, axis=0)[: rows - start])
        marker.write_text("ok")
    meta = store.meta("big")
    n = meta.rows // 100
    offsets = [int(o) for o in np.linspace(0, meta.rows - n, 5)]
    raw = zarr.open_array(zarr.storage.LocalStore(str(root)), path="big", mode="r")
    store.get_rows("big", 0, 1)  # both opened before timing
    raw[0:1]
    soma_t = statistics.median(
        _median_time(lambda o=o: store.get_rows("big", o, n), 3) for o in offsets
    )
    raw_t = statistics.median(_median_time(lambda o=o: raw[o : o + n], 3) for o in offsets)
    whole_t = _median_time(lambda: raw[:], 1)
    return {
        "gib": meta.rows * 256 / 2**30,
        "rows": meta.rows,
        "read_rows": n,
        "soma_s": soma_t,
        "raw_s": raw_t,
        "whole_s": whole_t,
    }


# -- 2. S3 throughput ------------------------------------------------------------------------


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    raise RuntimeError("moto_server did not start")


def bench_s3(mib: int, repeats: int = 9) -> dict[str, tuple[float, float]]:
    """Seconds (median, best) per operation; ``raw_*`` use s3fs's defaults."""
    import io

    import s3fs

    from soma.data.s3 import S3Store

    proc, endpoint = _moto()
    try:
        creds = {"key": "bench", "secret": "bench-secret", "endpoint_url": endpoint}
        fs = s3fs.S3FileSystem(**creds, skip_instance_cache=True)
        fs.mkdir("bench-bucket")
        store = S3Store("bench-bucket", "soma", **creds)
        array = np.random.default_rng(1).random((mib << 18,), dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        payload = buffer.getvalue()
        store.put(array, "warm")  # connections open
        fs.pipe_file("bench-bucket/raw/warm", payload)

        def raw_save_put() -> None:  # what storing the array costs without Soma
            out = io.BytesIO()
            np.save(out, array, allow_pickle=False)
            fs.pipe_file("bench-bucket/raw/b", out.getvalue())

        puts = _interleaved(
            [
                lambda: store.put(array, "a"),
                lambda: fs.pipe_file("bench-bucket/raw/a", payload),  # bytes ready-made
                raw_save_put,
            ],
            repeats,
        )
        gets = _interleaved(
            [
                lambda: store.get("a"),
                lambda: np.load(io.BytesIO(fs.cat_file("bench-bucket/raw/a")), allow_pickle=False),
            ],
            repeats,
        )
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    return {
        "mib": (len(payload) / 2**20,) * 2,
        "soma_put": puts[0],
        "raw_put": puts[1],
        "raw_save_put": puts[2],
        "soma_get": gets[0],
        "raw_get": gets[1],
    }


# -- 3. streaming ----------------------------------------------------------------------------


class Standardize(Filter):
    def fit(self, x, y=None):
        return x.mean(axis=0), x.std(axis=0) + 1e-9

    def forward(self, x, state):
        mean, std = state
        return (x - mean) / std


class Project(Filter):
    def forward(self, x, state):
        return x @ np.array([0.5, -1.0, 2.0, 0.25])


def _chunks(total: int, size: int) -> Callable[[], Iterator[np.ndarray]]:
    def make() -> Iterator[np.ndarray]:
        for index, start in enumerate(range(0, total, size)):
            rng = np.random.default_rng(index)
            yield rng.standard_normal((min(size, total - start), 4))

    return make


def bench_stream(total: int, size: int) -> dict[str, float]:
    graph = Graph.somatize(Standardize() >> Project())
    graph.fit(np.random.default_rng(99).standard_normal((10_000, 4)))
    source = GeneratorChunks(_chunks(total, size))

    def in_memory() -> float:
        x = np.concatenate(list(source))
        return float(graph.forward(x).sum())

    def streamed() -> float:
        return float(sum(out.sum() for out in Stream(graph, source)))

    assert abs(in_memory() - streamed()) < 1e-6 * total
    memory_t = _median_time(in_memory, 3)
    stream_t = _median_time(streamed, 3)
    peaks = {}
    for name, call in (("memory", in_memory), ("stream", streamed)):
        tracemalloc.start()
        call()
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return {
        "rows": total,
        "chunk": size,
        "memory_rows_s": total / memory_t,
        "stream_rows_s": total / stream_t,
        "memory_peak_mib": peaks["memory"],
        "stream_peak_mib": peaks["stream"],
        "chunk_mib": size * 4 * 8 / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller array and stream")
    args = parser.parse_args()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    zarr_rows = 1 << 20 if args.quick else 1 << 22
    z = bench_zarr(zarr_rows)
    print(
        f"zarr  {z['gib']:.2f} GiB ({z['rows']:,} x 64 float32),"
        f" read 1 % = {z['read_rows']:,} rows:"
        f" soma {z['soma_s'] * 1e3:.1f} ms, raw zarr {z['raw_s'] * 1e3:.1f} ms"
        f" ({z['soma_s'] / z['raw_s']:.2f}x), whole array {z['whole_s']:.2f} s"
        f" ({z['whole_s'] / z['soma_s']:.0f}x slower than 1 %)",
        flush=True,
    )
    s = bench_s3(16 if args.quick else 64)
    size = s["mib"][0]
    print(f"s3    {size:.0f} MiB float32 array on moto, 9 alternating rounds, median (best):")
    for op, peers in (("put", ("raw_put", "raw_save_put")), ("get", ("raw_get",))):
        soma_med, soma_best = s[f"soma_{op}"]
        line = f"  {op}  soma {size / soma_med:.0f} ({size / soma_best:.0f}) MiB/s"
        for peer in peers:
            med, best = s[peer]
            line += (
                f"; {peer.replace('_', ' ')} {size / med:.0f} ({size / best:.0f}) MiB/s,"
                f" soma {soma_med / med:.2f}x ({soma_best / best:.2f}x) the time"
            )
        print(line, flush=True)
    total = 1_000_000 if args.quick else 10_000_000
    t = bench_stream(total, 100_000)
    print(
        f"stream {t['rows']:,} rows x 4 float64 in chunks of {t['chunk']:,}:"
        f" stream {t['stream_rows_s'] / 1e6:.1f} M rows/s vs in memory"
        f" {t['memory_rows_s'] / 1e6:.1f} M rows/s"
        f" ({t['stream_rows_s'] / t['memory_rows_s']:.2f}x);"
        f" peak memory stream {t['stream_peak_mib']:.0f} MiB (chunk {t['chunk_mib']:.1f} MiB)"
        f" vs in memory {t['memory_peak_mib']:.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
