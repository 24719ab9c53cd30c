"""What a machine offers: CPU cores, memory, GPUs (through NVML) and the Python version."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Capabilities", "GpuInfo", "detect", "detect_gpus"]


@dataclass(frozen=True, slots=True)
class GpuInfo:
    index: int
    name: str
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    cpus: int
    memory_bytes: int
    gpus: tuple[GpuInfo, ...] = field(default_factory=tuple)
    gpu_note: str = ""
    python: str = ""
    platform: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = [asdict(g) for g in self.gpus]
        return data


def detect_gpus() -> tuple[tuple[GpuInfo, ...], str]:
    """GPUs seen by NVML, and a note saying why there are none when there are none."""
    try:
        import pynvml
    except ImportError:
        return (), "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return (), "no NVIDIA driver (NVML library not found)"
    except pynvml.NVMLError as exc:
        return (), f"NVML failed to start: {exc}"
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            found.append(GpuInfo(index, name if isinstance(name, str) else name.decode(), memory))
        return tuple(found), "" if found else "NVML found no devices"
    finally:
        pynvml.nvmlShutdown()


def detect() -> Capabilities:
    import psutil

    # The CPUs this process may use (cgroups/affinity), not the host's count.
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    gpus, note = detect_gpus()
    return Capabilities(
        cpus=cpus,
        memory_bytes=int(psutil.virtual_memory().total),
        gpus=gpus,
        gpu_note=note,
        python=".".join(map(str, sys.version_info[:3])),
        platform=f"{platform.system()} {platform.machine()}",
    )
