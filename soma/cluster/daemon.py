"""``soma coordinator start|stop`` and ``soma worker start|stop`` as functions.

The coordinator is a Ray head with no Soma slots (jobs never run on it) and token auth on;
a worker is a Ray node whose limits are Ray resources, so Ray enforces them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from soma.cluster._errors import ClusterError
from soma.cluster._nodes import (
    NodeRecord,
    cluster_dir,
    new_temp_dir,
    read_record,
    start_ray_node,
    stop_node,
    worker_records,
)
from soma.cluster._token import generate_token, read_token, verify_token, write_token
from soma.cluster._units import SLOT_RESOURCE, TAG_CAPACITY, parse_memory, parse_tags, tag_resource
from soma.errors import ValidationError

__all__ = [
    "CoordinatorStarted",
    "local_token",
    "start_coordinator",
    "start_worker",
    "stop_coordinator",
    "stop_worker",
]

DEFAULT_PORT = 6379


@dataclass
class CoordinatorStarted:
    record: NodeRecord
    token: str | None
    token_generated: bool
    token_path: str | None


def token_path() -> str:
    return str(cluster_dir() / "token")


def local_token() -> str | None:
    """The token this machine's coordinator stored, if there is one."""
    from pathlib import Path

    path = Path(token_path())
    return read_token(path) if path.exists() else None


def start_coordinator(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    auth: bool = True,
    temp_dir: str | None = None,
    timeout: float = 60.0,
) -> CoordinatorStarted:
    from pathlib import Path

    if read_record("coordinator") is not None:
        raise ClusterError(
            f"a coordinator is already recorded in {cluster_dir()}: `soma coordinator stop` first"
        )
    if not 0 < port < 65536:
        raise ValidationError("--port", f"expected 1..65535, got {port}")
    generated = False
    if auth and not token:
        token, generated = generate_token(), True
    temp_dir = temp_dir or new_temp_dir()
    args = [
        "--head",
        f"--node-ip-address={host}",
        f"--port={port}",
        "--num-cpus=0",  # the coordinator schedules; it runs no jobs (no soma slots either)
        "--num-gpus=0",
        "--include-dashboard=false",
        "--labels=soma-role=coordinator",
    ]
    pids = start_ray_node(args, temp_dir, token if auth else None, timeout)
    record = NodeRecord(
        "coordinator", "coordinator", f"{host}:{port}", temp_dir, pids, started=time.time()
    )
    record.save()
    stored = None
    if auth and token:
        stored = token_path()
        write_token(Path(stored), token)
    return CoordinatorStarted(record, token if auth else None, generated, stored)


def stop_coordinator() -> list[int]:
    record = read_record("coordinator")
    if record is None:
        raise ClusterError(f"no coordinator recorded in {cluster_dir()}")
    stopped = stop_node(record)
    from pathlib import Path

    Path(token_path()).unlink(missing_ok=True)
    return stopped


def start_worker(
    *,
    address: str,
    token: str | None = None,
    name: str | None = None,
    cpus: int | None = None,
    memory: str | None = None,
    gpus: int | None = None,
    max_concurrent: int | None = None,
    tags: str | list[str] | None = None,
    node_ip: str | None = None,
    temp_dir: str | None = None,
    timeout: float = 60.0,
) -> NodeRecord:
    """Join the coordinator at ``address`` with these limits (None: auto-detected)."""
    import soma
    from soma.cluster.capabilities import detect

    found = detect()
    cpus = found.cpus if cpus is None else _positive(cpus, "--cpus", zero_ok=False)
    gpus = len(found.gpus) if gpus is None else _positive(gpus, "--gpus", zero_ok=True)
    slots = cpus if max_concurrent is None else _positive(max_concurrent, "--max-concurrent")
    memory_bytes = parse_memory(memory) if memory is not None else None
    tag_list = parse_tags(tags)
    name = name or _free_worker_name()
    if read_record("worker", name) is not None:
        raise ClusterError(f"a worker named {name!r} is already running here: choose --name")
    token = token or local_token()
    verify_token(address, token)  # a clear error now rather than Ray's after ~20 s
    resources = {SLOT_RESOURCE: float(slots)}
    resources.update({tag_resource(t): float(TAG_CAPACITY) for t in tag_list})
    host = address.rsplit(":", 1)[0]
    node_ip = node_ip or ("127.0.0.1" if host in ("127.0.0.1", "localhost") else None)
    args = [
        f"--address={address}",
        f"--num-cpus={cpus}",
        f"--num-gpus={gpus}",
        f"--resources={json.dumps(resources)}",
        f"--labels=soma-worker={name},soma-version={soma.__version__}",
    ]
    if memory_bytes is not None:
        args.append(f"--memory={memory_bytes}")
    if node_ip:
        args.append(f"--node-ip-address={node_ip}")
    temp_dir = temp_dir or new_temp_dir()
    import os

    os.environ["SOMA_WORKER_NAME"] = name  # inherited by the raylet and its task workers
    try:
        pids = start_ray_node(args, temp_dir, token, timeout)
    finally:
        os.environ.pop("SOMA_WORKER_NAME", None)
    record = NodeRecord(
        "worker", name, address, temp_dir, pids,
        resources={"CPU": cpus, "GPU": gpus, SLOT_RESOURCE: slots,
                   **({"memory": memory_bytes} if memory_bytes else {})},
        tags=tag_list, started=time.time(),
    )  # fmt: skip
    record.save()
    return record


def stop_worker(name: str | None = None) -> dict[str, list[int]]:
    """Stop the named worker of this machine, or every one when ``name`` is None."""
    records = worker_records() if name is None else [read_record("worker", name)]
    if not records or records == [None]:
        what = f"no worker named {name!r}" if name else "no worker"
        raise ClusterError(f"{what} recorded in {cluster_dir()}")
    return {r.name: stop_node(r) for r in records if r is not None}


def _free_worker_name() -> str:
    taken = {r.name for r in worker_records()}
    index = 1
    while f"worker-{index}" in taken:
        index += 1
    return f"worker-{index}"


def _positive(value: int, field: str, zero_ok: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
        raise ValidationError(field, f"expected an integer >= {0 if zero_ok else 1}, got {value!r}")
    return value
