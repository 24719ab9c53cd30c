"""``Lab``: a handle on a Soma cluster (a Ray coordinator and its workers) or on this machine.

>>> lab = Lab.connect("10.0.0.5:6379", token="...")      # doctest: +SKIP
>>> lab.submit(sum, [1, 2, 3], tags=["big-ram"]).result()  # doctest: +SKIP
6
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from soma.cluster._errors import ClusterError
from soma.cluster._jobs import Job, Placement, environment_for, remote_runner, task_options
from soma.cluster._token import TOKEN_ENV, verify_token
from soma.cluster._units import SLOT_RESOURCE, TAG_CAPACITY, parse_tags, tag_resource

__all__ = ["Lab", "active_lab", "other_soma_versions", "project_lab"]

_ACTIVE: contextvars.ContextVar[Lab | None] = contextvars.ContextVar("soma_lab", default=None)


def active_lab() -> Lab | None:
    """The Lab that graph nodes with a placement run on (set by ``with lab.use():``)."""
    return _ACTIVE.get()


_SHARED: dict[str, Lab] = {}
_SHARED_LOCK = threading.Lock()


def project_lab(address: str | None) -> Lab | None:
    """The Lab of a project's ``[cluster] address`` (None: no cluster), connected once per
    process (Ray allows one cluster per driver) with ``$SOMA_TOKEN`` or, when the
    coordinator runs on this machine, the token it stored."""
    if not address:
        return None
    with _SHARED_LOCK:
        lab = _SHARED.get(address)
        if lab is not None and not lab._closed:
            return lab
        if any(not other._closed for other in _SHARED.values()):
            raise ClusterError(
                f"this process is connected to {next(iter(_SHARED))}; it cannot also join "
                f"{address} (one cluster per process)"
            )
        from soma.cluster.daemon import local_token

        token = os.environ.get(TOKEN_ENV) or local_token()
        lab = _SHARED[address] = Lab.connect(address, token=token)
        return lab


def _set_driver_token(token: str | None) -> None:
    """Make this process's Ray client send ``token`` (Ray reads it from the environment)."""
    os.environ["RAY_AUTH_MODE"] = "token" if token else "disabled"
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    if token:
        os.environ["RAY_AUTH_TOKEN"] = token
    else:
        os.environ.pop("RAY_AUTH_TOKEN", None)
    import sys

    if "ray" in sys.modules:  # Ray read its config at import: refresh it and the token cache
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


class Lab:
    """A connection to a cluster. Use ``Lab.connect(address, token=...)`` or ``Lab.local()``."""

    def __init__(self, address: str, *, local: bool) -> None:
        self.address = address
        self.is_local = local
        self.token_check_s: float | None = None
        self.ships_soma = False  # True: the workers run this driver's Soma (Lab.connect)
        self._runners: dict[tuple[str, int, str | None], Any] = {}  # Ray task wrappers
        self._closed = False
        self._running: set[Job] = set()  # submitted and not yet collected: what cancel() stops
        self._running_lock = threading.Lock()
        self._feasible: set[str] = set()  # placements some worker offers (checked once each)
        self._done: collections.deque[dict[str, Any]] = collections.deque(maxlen=_HISTORY)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        address: str,
        token: str | None = None,
        *,
        timeout: float = 2.0,
        ship_soma: bool | None = None,
        log_to_driver: bool = False,
    ) -> Lab:
        """Join the coordinator at ``HOST:PORT`` (token: argument, else ``$SOMA_TOKEN``).

        The token is checked first (TokenRejected / CoordinatorUnreachable within
        ``timeout``). ``ship_soma``: True sends this driver's Soma package to the workers
        (through Ray's object store, once per job) so they run the driver's code instead
        of their own install; None (default) does so when an alive worker reports another
        Soma version than this driver's; False never does.
        """
        import soma

        token = token or os.environ.get(TOKEN_ENV) or None
        checked = verify_token(address, token, timeout=timeout)
        _set_driver_token(token)
        import ray

        if ray.is_initialized():
            raise ClusterError("this process is already connected to Ray: close() that Lab first")

        def join(ship: bool) -> None:
            package = str(Path(soma.__file__).parent)
            ray.init(
                address=address,
                namespace="soma",
                log_to_driver=log_to_driver,
                runtime_env={"py_modules": [package]} if ship else None,
                logging_level="WARNING",
            )

        join(bool(ship_soma))
        lab = cls(address, local=False)
        lab.token_check_s = checked
        lab.ships_soma = bool(ship_soma)
        if ship_soma is None and other_soma_versions(lab.workers(), soma.__version__):
            ray.shutdown()  # the runtime env is the job's: join again, carrying Soma along
            join(True)
            lab.ships_soma = True
        return lab

    @classmethod
    def local(
        cls,
        cpus: int | None = None,
        *,
        max_concurrent: int | None = None,
        tags: Sequence[str] | str | None = None,
        gpus: int | None = None,
    ) -> Lab:
        """A one-machine cluster in this process (Ray's local mode of a head and a worker)."""
        import ray

        from soma.cluster.capabilities import detect

        if ray.is_initialized():
            raise ClusterError("this process is already connected to Ray: close() that Lab first")
        found = detect()
        cpus = found.cpus if cpus is None else cpus
        resources = {SLOT_RESOURCE: float(max_concurrent or cpus)}
        for tag in parse_tags(tags):
            resources[tag_resource(tag)] = float(TAG_CAPACITY)
        _set_driver_token(None)  # an in-process cluster on loopback: no token to share
        context = ray.init(
            num_cpus=cpus,
            num_gpus=len(found.gpus) if gpus is None else gpus,
            resources=resources,
            include_dashboard=False,
            namespace="soma",
            log_to_driver=False,
            logging_level="WARNING",
        )
        return cls(context.address_info.get("gcs_address", "local"), local=True)

    def close(self) -> None:
        import ray

        if not self._closed:
            self._closed = True
            ray.shutdown()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- looking -------------------------------------------------------------------------

    def workers(self) -> list[dict[str, Any]]:
        """Every node that offers Soma slots (alive or dead), with resources and load."""
        return [n for n in self.nodes() if n["role"] == "worker"]

    def nodes(self) -> list[dict[str, Any]]:
        import ray
        from ray._private import state

        available = state.available_resources_per_node() if ray.is_initialized() else {}
        found = []
        for node in ray.nodes():
            total = dict(node.get("Resources") or {})
            free = available.get(node["NodeID"], {}) if node["Alive"] else {}
            labels = node.get("Labels") or {}
            slots = total.get(SLOT_RESOURCE, 0.0)
            head = labels.get("soma-role") == "coordinator"
            found.append(
                {
                    "id": node["NodeID"][:12],
                    "name": labels.get("soma-worker")
                    or ("coordinator" if head else node["NodeManagerAddress"]),
                    "role": "coordinator" if head and not slots else "worker",
                    "address": node["NodeManagerAddress"],
                    "alive": bool(node["Alive"]),
                    "tags": sorted(k[4:] for k in total if k.startswith("tag:")),
                    "cpus": total.get("CPU", 0.0),
                    "gpus": total.get("GPU", 0.0),
                    "memory_bytes": int(total.get("memory", 0)),
                    "slots": slots,
                    "jobs_running": int(slots - free.get(SLOT_RESOURCE, slots)) if free else 0,
                    "cpus_free": free.get("CPU", 0.0),
                    "soma_version": labels.get("soma-version", ""),
                }
            )
        return found

    def health(self) -> dict[str, Any]:
        nodes = self.workers()
        alive = sum(n["alive"] for n in nodes)
        return {
            "address": self.address,
            "ok": alive > 0,
            "workers_alive": alive,
            "workers_dead": len(nodes) - alive,
        }

    def info(self) -> dict[str, Any]:
        import ray

        import soma

        nodes = self.nodes()
        return {
            **self.health(),
            "local": self.is_local,
            "ray_version": ray.__version__,
            "soma_version": soma.__version__,
            "resources": ray.cluster_resources(),
            "available": ray.available_resources(),
            "jobs_running": sum(n["jobs_running"] for n in nodes),
            "token_check_s": self.token_check_s,
            "ships_soma": self.ships_soma,
            "nodes": nodes,
        }

    # -- running -------------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        resources: Mapping[str, Any] | None = None,
        tags: Sequence[str] | str | None = None,
        requirements: Sequence[str] | None = None,
        wheelhouse: str | Path | None = None,
        retries: int = 3,
        name: str | None = None,
        **kwargs: Any,
    ) -> Job:
        """Run ``fn(*args, **kwargs)`` on a worker that has ``resources`` and ``tags``.

        ``requirements``: pip requirements for the job's environment (one environment per
        distinct set, by hash); ``wheelhouse``: install them offline from that folder.
        ``retries``: how often a job whose worker died is retried on another worker.
        """
        placement = Placement(resources, tags)
        return self.submit_placed(
            fn, args, kwargs, placement, name or getattr(fn, "__name__", "job"),
            requirements=requirements, wheelhouse=wheelhouse, retries=retries,
        )  # fmt: skip

    def submit_placed(
        self,
        fn: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        placement: Placement,
        what: str,
        *,
        requirements: Sequence[str] | None = None,
        wheelhouse: str | Path | None = None,
        retries: int = 3,
    ) -> Job:
        if self._closed:
            raise ClusterError("this Lab is closed")
        env = environment_for(requirements, wheelhouse)
        env_key = env[0] if env is not None else None
        # Ray's .options() builds a new wrapper class per call: keep one per placement.
        runner_key = (placement.describe(), retries, env_key)
        runner = self._runners.get(runner_key)
        if runner is None:
            options = task_options(placement, retries)
            self._check_feasible(options, placement, what)
            if env is not None:
                options["runtime_env"] = env[1]
            runner = self._runners.setdefault(runner_key, remote_runner().options(**options))
        ref = runner.remote(what, fn, args, kwargs)
        job = Job(ref, what, env_key)
        with self._running_lock:
            self._running.add(job)
        job._lab = self
        return job

    def _check_feasible(self, options: dict[str, Any], placement: Placement, what: str) -> None:
        """Refuse at once a job that no alive worker could ever run (Ray would queue it
        forever as infeasible); one that only has to wait for a busy worker is queued."""
        key = placement.describe()
        if key in self._feasible:
            return
        need = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], **options["resources"]}
        if "memory" in options:
            need["memory"] = options["memory"]
        need = {k: v for k, v in need.items() if v}
        alive = [n for n in self._node_totals() if n[1]]
        if not any(all(total.get(k, 0.0) >= v for k, v in need.items()) for _, _, total in alive):
            offers = "; ".join(
                f"{name}: {_offer(total)}" for name, _, total in alive if SLOT_RESOURCE in total
            )
            raise ClusterError(
                f"{what}: no alive worker has {placement.describe()} "
                f"(workers: {offers or 'none alive'})"
            )
        self._feasible.add(key)

    def _node_totals(self) -> list[tuple[str, bool, dict[str, float]]]:
        import ray

        found = []
        for node in ray.nodes():
            labels = node.get("Labels") or {}
            name = labels.get("soma-worker") or node["NodeManagerAddress"]
            found.append((name, bool(node["Alive"]), dict(node.get("Resources") or {})))
        return found

    def _forget(self, job: Job) -> None:
        with self._running_lock:
            self._running.discard(job)
            if job.worker is not None:
                self._done.append({"what": job.what, "worker": job.worker})

    def history(self) -> list[dict[str, Any]]:
        """The jobs this Lab collected, oldest first (at most the last 1,000): what each
        was (``"experiment 12"``, ``"trial 3"``, ``"node 'scale'"``) and the worker that ran
        it, for jobs that came back from a worker (a lost or cancelled job names none)."""
        with self._running_lock:
            return list(self._done)

    def cancel(self, force: bool = True) -> int:
        """Cancel every job of this Lab not yet collected (a graph run on it then fails
        with an error naming the node that was cancelled); how many were cancelled."""
        with self._running_lock:
            jobs = list(self._running)
            self._running.clear()
        for job in jobs:
            job.cancel(force=force)
        return len(jobs)

    def backend(self) -> Any:
        """An execution backend for ``Graph(backend=...)``: Remote steps run on this Lab."""
        from soma.execution._ray import RayBackend

        return RayBackend(self)

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **placement: Any) -> list[Any]:
        """``[fn(item) for item in items]`` across the workers (first error raised)."""
        jobs = [self.submit(fn, item, **placement) for item in items]
        return [job.result() for job in jobs]

    @contextlib.contextmanager
    def use(self) -> Iterator[Lab]:
        """Run graph nodes that ask for a placement on this Lab inside the block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def wait_for_workers(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(n["alive"] for n in self.workers()) < count:
            if time.monotonic() > deadline:
                raise ClusterError(f"fewer than {count} workers joined within {timeout:g} s")
            time.sleep(0.2)

    def __repr__(self) -> str:
        return f"Lab({self.address!r}{', local' if self.is_local else ''})"


_HISTORY = 1000


def other_soma_versions(workers: list[dict[str, Any]], version: str) -> list[str]:
    """The alive workers whose installed Soma is not ``version``, as 'name (version)'."""
    return [
        f"{w['name']} ({w['soma_version'] or 'unknown'})"
        for w in workers
        if w["alive"] and w["soma_version"] != version
    ]


def _offer(total: dict[str, float]) -> str:
    tags = sorted(k[4:] for k in total if k.startswith("tag:"))
    parts = [f"CPU={total.get('CPU', 0):g}"]
    if total.get("GPU"):
        parts.append(f"GPU={total['GPU']:g}")
    parts.append(f"memory={int(total.get('memory', 0)) >> 20}MiB")
    parts += [f"tag:{t}" for t in tags]
    return ", ".join(parts)
