"""Run as a script by test_stream: a checkpointed stream that a test kills with SIGKILL.

Usage: python _stream_worker.py CHECKPOINT_DIR OUT_FILE STOP_AFTER
Streams 30 chunks through a running-mean filter (evolving), appending "index value" to
OUT_FILE after each chunk; after STOP_AFTER chunks (0: never) it waits to be killed.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from soma import Filter, Graph
from soma.data import GeneratorChunks, Stream


class RunningMean(Filter):
    def init_state(self, x, y):
        return (0.0, 0)

    def partial_fit(self, x, y, state, steps):
        total, count = state
        return (total + float(np.sum(x)), count + len(x))

    def forward(self, x, state):
        total, count = state
        return total / count


def chunks():
    for i in range(30):
        yield np.arange(i * 10, i * 10 + 10, dtype=np.float64)


def main() -> None:
    checkpoint, out, stop_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    graph = Graph.somatize(RunningMean())
    stream = Stream(
        graph, GeneratorChunks(chunks), fit=True, checkpoint=checkpoint, checkpoint_every=5
    )
    index = None
    for value in stream:
        index = stream.chunks_done - 1
        with open(out, "a") as handle:
            handle.write(f"{index} {value!r} resumed_from={stream.resumed_from}\n")
        if stop_after and stream.chunks_done >= stop_after:
            while True:  # the checkpoint of chunk 10 is written; wait for SIGKILL
                time.sleep(0.1)
    with open(out, "a") as handle:
        handle.write(f"done {index}\n")


if __name__ == "__main__":
    main()
