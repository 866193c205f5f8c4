"""Per-container cgroups: memory and cpu limits, OOM-kill counts, usage, reliable kill.

The problem. Limits that the kernel enforces need a cgroup per container, and whether we
may create one depends on the host: cgroup v2 (one unified tree) or v1 (one tree per
controller), mounted read-only in most unprivileged containers, writable for root or in a
delegated subtree. The node agent must work everywhere, so :func:`detect` *probes* what is
usable -- it creates a parent cgroup and a throw-away child and writes a limit into it --
and the runtime falls back to rlimits when nothing is.

Layout. Container cgroups live under a parent named ``raftsman`` (by default) inside the
agent's own cgroup, per hierarchy:

* v1: ``<memory mount>/<agent's memory cgroup>/raftsman/<container id>`` and the same
  under the cpu hierarchy (when it is mounted and writable; cpu is optional);
* v2: ``<mount>/<agent's cgroup>/raftsman/<container id>`` when the agent's cgroup may
  delegate controllers (it holds no processes: the "no internal processes" rule), else
  the same beside the agent's cgroup, ``<mount>/<parent of agent's cgroup>/raftsman/...``.

Limits follow the kubelet: memory ``memory.limit_in_bytes`` (+ ``memsw``, so swap is no
escape) or ``memory.max`` (+ ``memory.swap.max = 0``, ``memory.oom.group = 1``); cpu as a
CFS quota of ``millicores * 100`` µs per 100 ms period (at least 1 ms). An OOM kill shows
as ``oom_kill N`` in ``memory.oom_control`` (v1) or ``memory.events`` (v2): the shim
compares the count before and after the container ran and reports reason ``OOMKilled``.

A :class:`ContainerCgroup` is plain paths, saved with the container's state, so an agent
restarted elsewhere in the tree still finds (and cleans up) the cgroups it made before.
"""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node_agent.runtime.base import Enforcement, Limits

__all__ = [
    "CgroupDriver",
    "CgroupUnavailable",
    "ContainerCgroup",
    "MountPoint",
    "cgroup_dir",
    "detect",
    "parse_mountinfo",
    "parse_proc_cgroup",
]

CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000


class CgroupUnavailable(Exception):
    """No usable cgroup hierarchy; the message says what was tried and why it failed."""


@dataclass(frozen=True)
class ContainerCgroup:
    """The cgroup directories of one container (one for v2; memory [+ cpu] for v1)."""

    version: Enforcement
    dirs: tuple[Path, ...]
    memory_dir: Path

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    @property
    def oom_files(self) -> list[str]:
        name = "memory.events" if self.version is Enforcement.CGROUP_V2 else "memory.oom_control"
        return [str(self.memory_dir / name)]

    def members(self) -> list[int]:
        pids: set[int] = set()
        for procs in self.procs_files:
            try:
                with open(procs) as f:
                    pids.update(int(line) for line in f if line.strip())
            except OSError:
                pass
        return sorted(pids)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (``cgroup.kill`` where the kernel has it)."""
        kill_file = self.memory_dir / "cgroup.kill"
        if self.version is Enforcement.CGROUP_V2 and kill_file.exists():
            try:
                kill_file.write_text("1")
                return
            except OSError:
                pass
        for pid in self.members():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def memory_bytes(self) -> int | None:
        """Working set: usage minus inactive file cache (as the kubelet computes it)."""
        if self.version is Enforcement.CGROUP_V2:
            usage_file, inactive_key = "memory.current", "inactive_file"
        else:
            usage_file, inactive_key = "memory.usage_in_bytes", "total_inactive_file"
        try:
            usage = int((self.memory_dir / usage_file).read_text())
            inactive = 0
            for line in (self.memory_dir / "memory.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    inactive = int(value)
            return max(0, usage - inactive)
        except (OSError, ValueError):
            return None

    def remove(self) -> bool:
        """Remove the directories; False while processes are still in them."""
        done = True
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                done = False
        return done

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version.value,
            "dirs": [str(d) for d in self.dirs],
            "memory_dir": str(self.memory_dir),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerCgroup:
        return cls(
            version=Enforcement(data["version"]),
            dirs=tuple(Path(d) for d in data["dirs"]),
            memory_dir=Path(data["memory_dir"]),
        )


@dataclass(frozen=True)
class CgroupDriver:
    """Creates container cgroups under the parents :func:`detect` found usable."""

    version: Enforcement
    memory_parent: Path
    cpu_parent: Path | None

    def create(self, name: str, limits: Limits) -> ContainerCgroup:
        """A new cgroup ``name`` with ``limits`` applied; OSError when the kernel refuses."""
        memory_dir = self.memory_parent / name
        dirs = [memory_dir]
        if self.cpu_parent is not None and self.cpu_parent != self.memory_parent:
            dirs.append(self.cpu_parent / name)
        for d in dirs:
            d.mkdir()
        cgroup = ContainerCgroup(self.version, tuple(dirs), memory_dir)
        try:
            self._apply(cgroup, limits)
        except BaseException:
            cgroup.remove()
            raise
        return cgroup

    def _apply(self, cgroup: ContainerCgroup, limits: Limits) -> None:
        memory_dir = cgroup.memory_dir
        cpu_dir = cgroup.dirs[-1] if self.cpu_parent is not None else None
        if self.version is Enforcement.CGROUP_V2:
            if limits.memory_bytes is not None:
                (memory_dir / "memory.max").write_text(str(limits.memory_bytes))
                _write_optional(memory_dir / "memory.swap.max", "0")
            _write_optional(memory_dir / "memory.oom.group", "1")
            if limits.cpu_millis is not None and cpu_dir is not None:
                quota = max(MIN_CPU_QUOTA_US, limits.cpu_millis * CPU_PERIOD_US // 1000)
                (cpu_dir / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        else:
            if limits.memory_bytes is not None:
                (memory_dir / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                _write_optional(
                    memory_dir / "memory.memsw.limit_in_bytes", str(limits.memory_bytes)
                )
            if limits.cpu_millis is not None and cpu_dir is not None:
                quota = max(MIN_CPU_QUOTA_US, limits.cpu_millis * CPU_PERIOD_US // 1000)
                (cpu_dir / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                (cpu_dir / "cpu.cfs_quota_us").write_text(str(quota))


def _write_optional(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class MountPoint:
    """A cgroup filesystem mount from ``/proc/self/mountinfo``."""

    root: str
    mount_point: Path
    fstype: str
    options: frozenset[str]


def parse_mountinfo(mountinfo: str) -> list[MountPoint]:
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype = tail[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(tail[2].split(",")) | frozenset(
            fields[5].split(",") if len(fields) > 5 else ()
        )
        found.append(MountPoint(fields[3], Path(fields[4].replace("\\040", " ")), fstype, options))
    return found


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller: path}; the v2 entry under key ``""``."""
    own = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def cgroup_dir(mount: MountPoint, cgroup_path: str) -> Path:
    """Where the cgroup ``cgroup_path`` (as ``/proc/<pid>/cgroup`` names it) is under ``mount``."""
    relative = os.path.relpath(cgroup_path, mount.root) if mount.root != "/" else cgroup_path
    relative = relative.lstrip("/")
    return mount.mount_point if relative in ("", ".") else mount.mount_point / relative


def _probe(parent: Path, files: list[tuple[str, str]]) -> None:
    """Create ``parent`` and a child in it, write ``files`` into the child, remove it."""
    parent.mkdir(exist_ok=True)
    probe = parent / f"probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        for name, value in files:
            (probe / name).write_text(value)
    finally:
        probe.rmdir()


def _detect_v2(mounts: list[MountPoint], own: dict[str, str], name: str) -> CgroupDriver:
    mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if mount is None or "" not in own:
        raise CgroupUnavailable("no cgroup2 mount")
    own_dir = cgroup_dir(mount, own[""])
    errors = []
    for base in (own_dir, own_dir.parent):
        try:
            controllers = (base / "cgroup.controllers").read_text().split()
            if "memory" not in controllers:
                raise CgroupUnavailable(f"{base} has no memory controller")
            wanted = [c for c in ("memory", "cpu") if c in controllers]
            (base / "cgroup.subtree_control").write_text(" ".join("+" + c for c in wanted))
            parent = base / name
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text(" ".join("+" + c for c in wanted))
            _probe(parent, [("memory.max", "max")])
            return CgroupDriver(Enforcement.CGROUP_V2, parent, parent if "cpu" in wanted else None)
        except (OSError, CgroupUnavailable) as exc:
            errors.append(f"{base}: {exc}")
    raise CgroupUnavailable("; ".join(errors))


def _detect_v1(mounts: list[MountPoint], own: dict[str, str], name: str) -> CgroupDriver:
    memory = next((m for m in mounts if m.fstype == "cgroup" and "memory" in m.options), None)
    if memory is None or "memory" not in own:
        raise CgroupUnavailable("no cgroup v1 memory hierarchy")
    memory_parent = cgroup_dir(memory, own["memory"]) / name
    try:
        _probe(memory_parent, [("memory.limit_in_bytes", str(1 << 40))])
    except OSError as exc:
        raise CgroupUnavailable(f"{memory_parent}: {exc}") from None
    cpu_parent = None
    cpu = next((m for m in mounts if m.fstype == "cgroup" and "cpu" in m.options), None)
    if cpu is not None and "cpu" in own:
        candidate = cgroup_dir(cpu, own["cpu"]) / name
        try:
            _probe(candidate, [("cpu.cfs_period_us", str(CPU_PERIOD_US))])
            cpu_parent = candidate
        except OSError:
            cpu_parent = None
    return CgroupDriver(Enforcement.CGROUP_V1, memory_parent, cpu_parent)


def detect(
    version: Enforcement | None = None,
    *,
    name: str = "raftsman",
    mountinfo: str | None = None,
    own_cgroup: str | None = None,
) -> CgroupDriver:
    """The usable cgroup hierarchy: v2 first, then v1 (or only ``version``).

    Raises :class:`CgroupUnavailable` saying why each candidate failed. ``mountinfo`` and
    ``own_cgroup`` default to this process's ``/proc/self/mountinfo`` and
    ``/proc/self/cgroup``.
    """
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    if own_cgroup is None:
        own_cgroup = Path("/proc/self/cgroup").read_text()
    mounts = parse_mountinfo(mountinfo)
    own = parse_proc_cgroup(own_cgroup)
    candidates = {
        Enforcement.CGROUP_V2: _detect_v2,
        Enforcement.CGROUP_V1: _detect_v1,
    }
    if version is not None and version not in candidates:
        raise ValueError(f"not a cgroup version: {version}")
    errors = []
    for candidate, probe in candidates.items():
        if version is not None and candidate is not version:
            continue
        try:
            return probe(mounts, own, name)
        except CgroupUnavailable as exc:
            errors.append(f"{candidate.value}: {exc}")
    raise CgroupUnavailable("; ".join(errors))
