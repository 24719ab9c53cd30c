"""Jobs on the cluster: placement -> Ray task options, per-job environments, results.

A job takes one ``soma_slot`` of its worker (so ``--max-concurrent`` is enforced by Ray's
scheduler), one unit of each tag it asks for, and its CPUs / GPUs / memory as Ray
resources: a job asking for more than any worker has waits (Ray reports it infeasible).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from soma.cluster._errors import ClusterError, WorkerLost
from soma.cluster._remote import RemoteTaskError, run_call
from soma.cluster._units import SLOT_RESOURCE, parse_memory, parse_tags, tag_resource
from soma.errors import ValidationError

__all__ = ["Job", "Placement", "environment_for", "task_options"]


class Placement:
    """Where a job may run: resources (``{"GPU": 1, "CPU": 2, "memory": "4G"}``) and tags."""

    __slots__ = ("resources", "tags")

    def __init__(
        self, resources: Mapping[str, Any] | None = None, tags: Sequence[str] | str | None = None
    ) -> None:
        clean: dict[str, float] = {}
        for key, value in (resources or {}).items():
            if key == "memory":
                clean[key] = float(parse_memory(value, "resources['memory']"))
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValidationError(
                    f"resources[{key!r}]", f"expected a number >= 0, got {value!r}"
                )
            clean[str(key)] = float(value)
        self.resources = clean
        self.tags = tuple(parse_tags(tags, "tags"))

    def describe(self) -> str:
        parts = [f"{k}={v:g}" for k, v in sorted(self.resources.items()) if k != "memory"]
        if "memory" in self.resources:
            parts.append(f"memory={int(self.resources['memory']) >> 20}MiB")
        parts += [f"tag:{t}" for t in self.tags]
        return ", ".join(parts) or "any worker"

    def __repr__(self) -> str:
        return f"Placement({self.describe()})"


def task_options(placement: Placement, retries: int) -> dict[str, Any]:
    resources = dict(placement.resources)
    options: dict[str, Any] = {
        "num_cpus": resources.pop("CPU", 1.0),
        "num_gpus": resources.pop("GPU", 0.0),
        "max_retries": retries,  # system failures only (a lost worker): user errors are values
        "retry_exceptions": False,
    }
    memory = resources.pop("memory", None)
    if memory:
        options["memory"] = memory
    custom = {SLOT_RESOURCE: 1.0, **resources}
    for tag in placement.tags:
        custom[tag_resource(tag)] = 1.0
    options["resources"] = custom
    return options


def environment_for(
    requirements: Sequence[str] | None, wheelhouse: str | Path | None
) -> tuple[str, dict[str, Any]] | None:
    """A Ray runtime_env for pip ``requirements``, keyed by their hash (one env, many jobs).

    With a ``wheelhouse`` the install is offline: ``--no-index --find-links WHEELHOUSE``.
    """
    if not requirements:
        return None
    if isinstance(requirements, str):
        raise ValidationError("requirements", "expected a list of pip requirements, got a str")
    reqs = sorted(str(r).strip() for r in requirements if str(r).strip())
    pip: dict[str, Any] = {"packages": reqs, "pip_check": False}
    if wheelhouse is not None:
        folder = Path(wheelhouse).resolve()
        if not folder.is_dir():
            raise ValidationError("wheelhouse", f"expected a folder of wheels, got {folder}")
        pip["pip_install_options"] = ["--no-index", "--find-links", str(folder)]
    key = hashlib.sha256(json.dumps(pip, sort_keys=True).encode()).hexdigest()[:16]
    return key, {"pip": pip, "env_vars": {"SOMA_ENV_KEY": key}}


class Job:
    """A submitted job: ``result()``, ``done()``, ``cancel()``; ``worker`` once finished."""

    def __init__(self, ref: Any, what: str, env_key: str | None = None) -> None:
        self.ref = ref
        self.what = what
        self.env_key = env_key
        self.worker: str | None = None
        self._lab: Any = None  # the Lab that tracks it for cancel(), until collected

    def done(self) -> bool:
        import ray

        ready, _ = ray.wait([self.ref], timeout=0)
        return bool(ready)

    def cancel(self, force: bool = True) -> None:
        """Cancel the job: a queued job never starts; a running one is stopped.

        ``force`` (default) ends the worker process running it (Ray starts a fresh one; the
        worker node stays up): Ray 2.60's gentle cancel runs tasks to their end when they
        are not in Python's main thread, so a sleeping or C-bound job would keep its slot.
        """
        import ray

        if self.done():  # finished already: nothing to stop, and its process is reused
            return
        ray.cancel(self.ref, force=force, recursive=True)

    def result(self, timeout: float | None = None) -> Any:
        try:
            ok, value, worker = self._get(timeout)
        except TimeoutError:
            raise  # still running: still cancellable
        except BaseException:
            self._collected()
            raise
        self.worker = worker
        self._collected()
        if not ok:
            raise value
        return value

    def _collected(self) -> None:
        if self._lab is not None:
            self._lab._forget(self)

    def _get(self, timeout: float | None) -> tuple[bool, Any, str]:
        import ray
        from ray import exceptions as rex

        try:
            return ray.get(self.ref, timeout=timeout)
        except rex.GetTimeoutError:
            raise TimeoutError(f"{self.what} did not finish within {timeout} s") from None
        except rex.TaskCancelledError:
            raise ClusterError(f"{self.what} was cancelled") from None
        except rex.RuntimeEnvSetupError as exc:
            raise ClusterError(
                f"{self.what}: its environment (requirements hash {self.env_key}) failed to "
                f"install on the worker: {_install_error(str(exc))}"
            ) from None
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.LocalRayletDiedError) as exc:
            raise WorkerLost(
                f"{self.what}: the worker running it died and retries ran out "
                f"({type(exc).__name__})"
            ) from None
        except rex.RayTaskError as exc:  # Soma's wrapper itself failed, e.g. unpicklable args
            raise ClusterError(
                f"{self.what} failed on the cluster: {_first_lines(str(exc))}"
            ) from exc


def _install_error(text: str) -> str:
    """pip's own ERROR lines ('No matching distribution found for x==9') when it printed
    any, else the end of Ray's report (which starts with the virtualenv's long command)."""
    errors = [line.strip() for line in text.splitlines() if line.strip().startswith("ERROR:")]
    return "; ".join(dict.fromkeys(errors)) if errors else _first_lines(text)


def _first_lines(text: str, count: int = 6) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def remote_runner() -> Any:
    """``run_call`` as a Ray remote function (made once; Ray caches it by function id)."""
    global _RUNNER
    if _RUNNER is None:
        import ray

        _RUNNER = ray.remote(run_call)
    return _RUNNER


_RUNNER: Any = None

__all__ += ["RemoteTaskError"]
