"""GPU check for soma.cluster: detection, then a 1-node cluster running a num_gpus=1 task.

Run on a GPU machine from the repository root (root, for the loopback-only namespace):
    unshare -n sh -c 'ip link set lo up; .venv/bin/python tools/gpu_check.py'
(or without unshare on a machine where Ray binding all interfaces is acceptable).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ["HOME"] = tempfile.mkdtemp(prefix="soma-gpu-")  # its own cluster dir and token


def main() -> int:
    from soma.cluster import Lab, daemon
    from soma.cluster.capabilities import detect

    found = detect()
    print("detected:", found.as_dict())
    if not found.gpus:
        print("no GPU detected:", found.gpu_note)
        return 1
    started = daemon.start_coordinator(port=6391)
    try:
        daemon.start_worker(address="127.0.0.1:6391", token=started.token, cpus=1,
                            gpus=len(found.gpus), tags="gpu")  # fmt: skip
        with Lab.connect("127.0.0.1:6391", token=started.token) as lab:
            lab.wait_for_workers(1)
            print("workers:", [(w["name"], w["gpus"], w["tags"]) for w in lab.workers()])

            def visible() -> tuple[str, str]:
                from soma.cluster._remote import worker_name

                return worker_name(), os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

            t0 = time.perf_counter()
            job = lab.submit(visible, resources={"GPU": 1}, tags=["gpu"])
            worker, devices = job.result(timeout=120)
            print(f"task with num_gpus=1 ran on {worker}: CUDA_VISIBLE_DEVICES={devices} "
                  f"({time.perf_counter() - t0:.2f} s)")  # fmt: skip
            too_many = lab.submit(visible, resources={"GPU": len(found.gpus) + 1})
            try:
                too_many.result(timeout=5)
                print("UNEXPECTED: a task asking for more GPUs than exist ran")
            except TimeoutError:
                print(f"a task asking for {len(found.gpus) + 1} GPUs waits, as it should")
                too_many.cancel(force=True)
        return 0 if devices not in ("", "<unset>") else 1
    finally:
        daemon.stop_worker()
        daemon.stop_coordinator()


if __name__ == "__main__":
    sys.exit(main())
