"""What a node reports about its host: capacity, system info, resource pressure.

Capacity comes from the host unless flags say otherwise (simulated nodes always say):
``cpu`` is the number of CPUs the agent may run on, ``memory`` the host's ``MemTotal``
(in ``Ki``, as the kubelet writes it), ``pods`` 110 (Kubernetes' ``maxPods``),
``ephemeral-storage`` the size of the file system of the agent's data directory.
Allocatable equals capacity: no system or kube reservations are made.

Pressure conditions follow the kubelet's default hard eviction thresholds:
``MemoryPressure`` when ``memory.available`` (``MemAvailable``) < 100Mi,
``DiskPressure`` when ``nodefs.available`` (free space of the data directory's file
system) < 10%. Kubernetes sets no default for PIDs; here ``PIDPressure`` is True when
fewer than 5% of ``kernel.pid_max`` remain. A reading that fails (no /proc) reports no
pressure. The agent only reports pressure; it evicts nothing.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "HostPressure",
    "NoPressure",
    "Pressure",
    "PressureSource",
    "host_capacity",
    "system_info",
]

MEMORY_AVAILABLE_MIN = 100 * 1024 * 1024
DISK_AVAILABLE_MIN_FRACTION = 0.10
PIDS_AVAILABLE_MIN_FRACTION = 0.05
DEFAULT_MAX_PODS = 110

_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def architecture() -> str:
    """The Go/Kubernetes name of this machine's architecture (``amd64``, ``arm64``)."""
    machine = platform.machine()
    return _ARCH.get(machine, machine.lower())


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes; empty where unreadable."""
    out = {}
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            factor = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            out[name] = int(parts[0]) * factor
    return out


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_capacity(data_dir: Path) -> dict[str, str]:
    """The host's capacity: cpu, memory, pods, ephemeral-storage (quantities)."""
    capacity = {"cpu": str(_cpu_count()), "pods": str(DEFAULT_MAX_PODS)}
    total = _meminfo().get("MemTotal")
    if total:
        capacity["memory"] = f"{total // 1024}Ki"
    try:
        fs = os.statvfs(data_dir)
        capacity["ephemeral-storage"] = f"{fs.f_blocks * fs.f_frsize // 1024}Ki"
    except OSError:
        pass
    return capacity


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return platform.platform()


def system_info(*, runtime: str, version: str) -> dict[str, str]:
    """NodeSystemInfo fields (Kubernetes' JSON names) of this host."""
    return {
        "machineID": _read("/etc/machine-id"),
        "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": _os_image(),
        "containerRuntimeVersion": f"{runtime}://{version}",
        "kubeletVersion": f"v{version}",
        "kubeProxyVersion": f"v{version}",
        "operatingSystem": platform.system().lower(),
        "architecture": architecture(),
    }


@dataclass(frozen=True)
class Pressure:
    """Whether the node is short of memory, disk or PIDs, with the reading that says so."""

    memory: bool = False
    disk: bool = False
    pids: bool = False
    detail: Mapping[str, str] | None = None


class PressureSource(Protocol):
    def read(self) -> Pressure: ...


class NoPressure:
    """Never under pressure (simulated nodes)."""

    def read(self) -> Pressure:
        return Pressure()


class HostPressure:
    """Pressure of this host, measured against the thresholds of the module docstring."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)

    def read(self) -> Pressure:
        detail: dict[str, str] = {}
        memory = disk = pids = False
        available = _meminfo().get("MemAvailable")
        if available is not None:
            memory = available < MEMORY_AVAILABLE_MIN
            detail["memory.available"] = f"{available // (1024 * 1024)}Mi"
        try:
            fs = os.statvfs(self.data_dir)
            if fs.f_blocks:
                fraction = fs.f_bavail / fs.f_blocks
                disk = fraction < DISK_AVAILABLE_MIN_FRACTION
                detail["nodefs.available"] = f"{fraction:.0%}"
        except OSError:
            pass
        pid_max = _read("/proc/sys/kernel/pid_max")
        if pid_max.isdigit():
            try:
                used = sum(1 for name in os.listdir("/proc") if name.isdigit())
            except OSError:
                used = 0
            pids = (int(pid_max) - used) / int(pid_max) < PIDS_AVAILABLE_MIN_FRACTION
            detail["pid.available"] = str(int(pid_max) - used)
        return Pressure(memory=memory, disk=disk, pids=pids, detail=detail)
