"""The faults the harness can inject, as typed values: what to do, and how to undo it.

A fault is a frozen dataclass with a ``kind`` (the word used in experiment files) and
one method, :meth:`Fault.start`, that applies it to processes already resolved by
:class:`~chaos.cluster.Cluster.select` and returns a :class:`Heal`: the awaitable that
undoes it (``SIGCONT`` after a pause, removing a link rule, restoring permissions), or
nothing for faults that cannot be undone (a kill; the supervisor's restart, if enabled,
is the cluster's own recovery, not part of the fault).

The runner (:mod:`chaos.experiment`) owns the timing: it starts the fault, waits out its
``duration``, heals it, and makes sure healing happens even when the run is cancelled
(a process left stopped, a member left partitioned, would poison whatever runs next).

Kinds:

=============  ===================================================================
``kill``       SIGKILL to the process group
``terminate``  SIGTERM to the process group (a clean stop)
``pause``      SIGSTOP for ``duration`` seconds, then SIGCONT
``restart``    SIGTERM and wait until the supervisor runs it again (needs restarts)
``partition``  cut every fault link to and from the process for ``duration``
               (``mode: refuse`` closes connections, ``blackhole`` swallows bytes);
               needs ``raftsman up --fault-links``
``delay``      add ``latency`` seconds each way on its fault links for ``duration``
``disk``       make a store member's data directory unwritable for ``duration``
               (``chmod``; no effect when the member runs as root, see docs/chaos.md)
=============  ===================================================================
"""

from __future__ import annotations

import abc
import os
import signal
import stat
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import trio

from chaos.cluster import ChaosError, Cluster, Proc, ProcessGone

Heal = Callable[[], Awaitable[None]]


class FaultError(ChaosError):
    """A fault is malformed or cannot be applied to these targets; says which and why."""


@dataclass(frozen=True, kw_only=True)
class Fault(abc.ABC):
    """Base class: ``kind`` names it in experiment files, ``duration`` how long it lasts."""

    kind: ClassVar[str]
    duration: float = 0.0

    def __post_init__(self) -> None:
        if self.duration < 0:
            raise FaultError(f"{self.kind}: duration must be >= 0 seconds, not {self.duration}")

    @abc.abstractmethod
    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        """Apply the fault; the way to undo it, if there is one."""

    def describe(self) -> str:
        extra = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if f.name != "duration" and getattr(self, f.name) != f.default
        ]
        if self.duration:
            extra.append(f"for {self.duration:g}s")
        return " ".join([self.kind, *extra])


def _signal_all(cluster: Cluster, targets: Sequence[Proc], sig: signal.Signals) -> list[Proc]:
    """Signal every target that is still running; the ones reached."""
    reached = []
    for proc in targets:
        try:
            cluster.signal(proc, sig)
        except ProcessGone:
            continue
        reached.append(proc)
    if not reached:
        raise FaultError(f"{sig.name}: none of {', '.join(map(str, targets))} is running")
    return reached


@dataclass(frozen=True, kw_only=True)
class Kill(Fault):
    kind: ClassVar[str] = "kill"

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        _signal_all(cluster, targets, signal.SIGKILL)
        return None


@dataclass(frozen=True, kw_only=True)
class Terminate(Fault):
    kind: ClassVar[str] = "terminate"

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        _signal_all(cluster, targets, signal.SIGTERM)
        return None


@dataclass(frozen=True, kw_only=True)
class Pause(Fault):
    """SIGSTOP now, SIGCONT when healed: the process is frozen, its sockets stay open."""

    kind: ClassVar[str] = "pause"
    duration: float = 5.0

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        stopped = _signal_all(cluster, targets, signal.SIGSTOP)

        async def resume() -> None:
            for proc in stopped:
                try:
                    cluster.signal(proc, signal.SIGCONT)
                except ProcessGone:
                    pass

        return resume


@dataclass(frozen=True, kw_only=True)
class Restart(Fault):
    """A clean restart: SIGTERM, then wait for the supervisor to start it again."""

    kind: ClassVar[str] = "restart"
    timeout: float = 30.0

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        if not cluster.restarts_enabled:
            raise FaultError("restart needs a cluster started without --no-restart")
        reached = _signal_all(cluster, targets, signal.SIGTERM)
        for proc in reached:
            await cluster.wait_replaced(proc, timeout=self.timeout)
        return None


LINK_MODES = ("refuse", "blackhole")


@dataclass(frozen=True, kw_only=True)
class Partition(Fault):
    """Cut the target's fault links (to and from it) until healed."""

    kind: ClassVar[str] = "partition"
    duration: float = 5.0
    mode: str = "refuse"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in LINK_MODES:
            raise FaultError(f"partition: mode must be one of {LINK_MODES}, not {self.mode!r}")

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        from cli.launcher.links import LinkControl, Rule

        control = LinkControl.for_cluster(cluster.dir)
        rules = [Rule(action=self.mode, process=p.name) for p in targets]
        ids = await control.add(rules)

        async def heal() -> None:
            await control.remove(ids)

        return heal


@dataclass(frozen=True, kw_only=True)
class Delay(Fault):
    """Hold every chunk on the target's fault links for ``latency`` seconds each way."""

    kind: ClassVar[str] = "delay"
    duration: float = 5.0
    latency: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.latency <= 60:
            raise FaultError(f"delay: latency must be in (0, 60] seconds, not {self.latency}")

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        from cli.launcher.links import LinkControl, Rule

        control = LinkControl.for_cluster(cluster.dir)
        rules = [Rule(action="delay", process=p.name, latency=self.latency) for p in targets]
        ids = await control.add(rules)

        async def heal() -> None:
            await control.remove(ids)

        return heal


@dataclass(frozen=True, kw_only=True)
class Disk(Fault):
    """Remove write permission from a member's data directory (and what is in it)."""

    kind: ClassVar[str] = "disk"
    duration: float = 5.0

    async def start(self, cluster: Cluster, targets: Sequence[Proc]) -> Heal | None:
        for proc in targets:
            if proc.data is None:
                raise FaultError(f"disk: {proc.name} has no data directory")
        saved = await trio.to_thread.run_sync(_read_only, [Path(p.data or "") for p in targets])

        async def heal() -> None:
            await trio.to_thread.run_sync(_restore, saved)

        return heal


def _read_only(roots: Sequence[Path]) -> dict[Path, int]:
    """Clear every write bit under ``roots``; the modes to restore."""
    saved: dict[Path, int] = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            saved[path] = mode
            os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return saved


def _restore(saved: Mapping[Path, int]) -> None:
    for path, mode in saved.items():
        try:
            os.chmod(path, mode)
        except FileNotFoundError:
            pass


FAULTS: Mapping[str, type[Fault]] = {
    cls.kind: cls for cls in (Kill, Terminate, Pause, Restart, Partition, Delay, Disk)
}
"""Every fault class by its ``kind``."""


def parse_fault(spec: Mapping[str, Any] | str) -> Fault:
    """A fault from its experiment-file form: ``kill`` or ``{kind: pause, duration: 3}``."""
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, Mapping):
        raise FaultError(f"fault must be a kind or a mapping with 'kind', not {spec!r}")
    args = dict(spec)
    kind = args.pop("kind", None)
    cls = FAULTS.get(str(kind))
    if cls is None:
        raise FaultError(f"fault kind must be one of {', '.join(FAULTS)}, not {kind!r}")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise FaultError(
            f"fault {kind}: unknown field(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(allowed))}"
        )
    for name, value in args.items():
        if name != "mode" and not isinstance(value, int | float):
            raise FaultError(f"fault {kind}: {name} must be a number of seconds, not {value!r}")
    return cls(**args)
