"""``soma coordinator start|stop``, ``soma worker start|stop`` and ``soma cluster status``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import AsJson, fail

coordinator_app = typer.Typer(
    help="The cluster's coordinator (a Ray head with token auth).", no_args_is_help=True
)
worker_app = typer.Typer(help="A worker joining a coordinator.", no_args_is_help=True)
cluster_app = typer.Typer(help="Look at a running cluster.", no_args_is_help=True)
app.add_typer(coordinator_app, name="coordinator")
app.add_typer(worker_app, name="worker")
app.add_typer(cluster_app, name="cluster")

Token = Annotated[
    str | None,
    typer.Option("--token", envvar="SOMA_TOKEN", help="Cluster token (default $SOMA_TOKEN)."),
]
TempDir = Annotated[
    str | None, typer.Option("--temp-dir", help="Ray's folder for this node (default: new).")
]


def _soma_errors() -> tuple[type[Exception], ...]:
    from soma.errors import SomaError

    return (SomaError,)


@coordinator_app.command("start")
def coordinator_start(
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="GCS port workers join.")] = 6379,
    token: Token = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Turn token auth off (trusted networks only).")
    ] = False,
    temp_dir: TempDir = None,
    as_json: AsJson = False,
) -> None:
    """Start a coordinator; prints its address and (once) a generated token."""
    from soma.cluster.daemon import start_coordinator

    try:
        started = start_coordinator(
            host=host, port=port, token=token, auth=not no_auth, temp_dir=temp_dir
        )
    except _soma_errors() as exc:
        raise fail(str(exc)) from None
    record = started.record
    if as_json:
        out = {
            "address": record.address,
            "pids": sorted(record.pids),
            "token_file": started.token_path,
        }
        if started.token_generated:
            out["token"] = started.token
        typer.echo(json.dumps(out))
        return
    typer.echo(f"coordinator at {record.address} (pids {', '.join(map(str, sorted(record.pids)))})")
    if started.token_generated:
        typer.echo(f"token (shown once; stored 0600 in {started.token_path}):")
        typer.echo(started.token)
    elif started.token:
        typer.echo(f"token auth on (token stored 0600 in {started.token_path})")
    else:
        typer.echo("token auth OFF: anyone who reaches this address can run code")
    typer.echo(f"join with: soma worker start --address {record.address} --token TOKEN")


@coordinator_app.command("stop")
def coordinator_stop() -> None:
    """Stop this machine's coordinator (its own processes, by PID)."""
    from soma.cluster.daemon import stop_coordinator

    try:
        stopped = stop_coordinator()
    except _soma_errors() as exc:
        raise fail(str(exc)) from None
    typer.echo(f"coordinator stopped ({len(stopped)} processes)")


@worker_app.command("start")
def worker_start(
    address: Annotated[str, typer.Option("--address", help="Coordinator HOST:PORT.")],
    token: Token = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Worker name (default worker-N).")
    ] = None,
    cpus: Annotated[int | None, typer.Option("--cpus", help="CPU cores (default: all).")] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="Memory limit, binary units: 8G, 512M, 8GiB.")
    ] = None,
    gpus: Annotated[int | None, typer.Option("--gpus", help="GPUs (default: detected).")] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", help="Jobs at once (default: --cpus).")
    ] = None,
    tags: Annotated[
        str | None, typer.Option("--tags", help="Comma-separated: gpu,big-ram.")
    ] = None,
    node_ip: Annotated[
        str | None, typer.Option("--node-ip", help="This machine's address as others see it.")
    ] = None,
    temp_dir: TempDir = None,
    as_json: AsJson = False,
) -> None:
    """Join a coordinator with enforced limits (Ray resources)."""
    from soma.cluster.daemon import start_worker

    try:
        record = start_worker(
            address=address, token=token, name=name, cpus=cpus, memory=memory, gpus=gpus,
            max_concurrent=max_concurrent, tags=tags, node_ip=node_ip, temp_dir=temp_dir,
        )  # fmt: skip
    except _soma_errors() as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"name": record.name, "pids": sorted(record.pids),
                               "resources": record.resources, "tags": record.tags}))  # fmt: skip
        return
    limits = ", ".join(f"{k}={v:g}" for k, v in record.resources.items())
    tags_text = f", tags {', '.join(record.tags)}" if record.tags else ""
    typer.echo(f"worker {record.name} joined {address}: {limits}{tags_text}")


@worker_app.command("stop")
def worker_stop(
    name: Annotated[
        str | None, typer.Option("--name", help="Worker to stop (default: all).")
    ] = None,
) -> None:
    """Stop this machine's workers (their own processes, by PID)."""
    from soma.cluster.daemon import stop_worker

    try:
        stopped = stop_worker(name)
    except _soma_errors() as exc:
        raise fail(str(exc)) from None
    for worker, pids in stopped.items():
        typer.echo(f"worker {worker} stopped ({len(pids)} processes)")


@worker_app.command("detect")
def worker_detect(as_json: AsJson = False) -> None:
    """Print what this machine offers (CPUs, memory, GPUs, Python)."""
    from soma.cluster.capabilities import detect

    found = detect().as_dict()
    if as_json:
        typer.echo(json.dumps(found))
        return
    gpus = ", ".join(g["name"] for g in found["gpus"]) or f"none ({found['gpu_note']})"
    typer.echo(f"cpus {found['cpus']}, memory {found['memory_bytes'] / 2**30:.1f} GiB, "
               f"gpus {gpus}, python {found['python']}, {found['platform']}")  # fmt: skip


@cluster_app.command("status")
def cluster_status(
    address: Annotated[
        str | None,
        typer.Option("--address", help="Coordinator HOST:PORT (default: this machine's)."),
    ] = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Nodes, their resources and load, alive or dead, jobs running."""
    from soma.cluster._nodes import read_record
    from soma.cluster.daemon import local_token
    from soma.cluster.lab import Lab

    if address is None:
        record = read_record("coordinator")
        if record is None:
            raise fail("no coordinator on this machine: give --address HOST:PORT")
        address = record.address
    try:
        with Lab.connect(address, token=token or local_token()) as lab:
            info = lab.info()
    except _soma_errors() as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(info, default=str))
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))  # a readable table in pipes too
    console.print(
        f"cluster {info['address']}: {info['workers_alive']} worker(s) alive, "
        f"{info['workers_dead']} dead, {info['jobs_running']} job(s) running "
        f"(ray {info['ray_version']}, soma {info['soma_version']})",
        highlight=False,
    )
    table = Table("name", "role", "state", "address", "cpus", "gpus", "memory", "slots",
                  "running", "tags")  # fmt: skip
    for n in info["nodes"]:
        table.add_row(
            n["name"], n["role"], "alive" if n["alive"] else "DEAD", n["address"],
            f"{n['cpus']:g}", f"{n['gpus']:g}", f"{n['memory_bytes'] / 2**30:.1f}G",
            f"{n['slots']:g}", str(n["jobs_running"]), ",".join(n["tags"]),
        )  # fmt: skip
    console.print(table)
