"""A running cluster as the chaos harness sees it: its processes, who leads, what to hit.

The problem. A fault must land on the process the experiment means -- "the store
leader", "a scheduler standby", "node-1", "the container of pod web-x" -- and on no
other. Names are not enough: a pid in the state file may have been recycled by an
unrelated process since the supervisor wrote it, and a restarted component has a new
pid. So every target is resolved *now*, from a fresh read of ``DIR/state.json`` (written
by ``raftsman up``'s supervisor) plus a question to the component (Maintenance.Status
for stores, the leader Leases for schedulers and controller managers), and carries the
process's start time (``/proc/PID/stat`` field 22). Signals are sent only after checking
that the pid still has that start time (:meth:`Cluster.signal`), so a process that
exited meanwhile raises :class:`ProcessGone` instead of hitting a stranger. Nothing is
ever looked up or killed by name.

Components run in their own sessions (pid = process group id), so signals go to the
group: whatever a component forked goes with it. A pod's container is different: it
runs in its own session under its shim, so :class:`Target` of kind ``pod`` resolves to
the container's own pid (recorded by the process runtime in the node agent's data
directory, with its start time) and is signalled alone.

Selectors (:class:`Selector`) are small and explicit: ``store`` leader / follower / any /
all / a name; ``apiserver`` any / all / a name; ``scheduler`` and ``controller-manager``
leader / standby / any; ``node-agent`` any / a name; ``pod`` ``namespace/name`` with an
optional container. A random pick among several matches uses the experiment's seeded
:class:`random.Random`, so a run can be replayed.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import random
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio

from cli.launcher import pids
from cli.launcher.layout import Layout
from cli.launcher.readiness import apiserver_ready, lease_holder, store_status
from cli.launcher.report import LEADER_LEASES
from cli.launcher.state import ClusterState, ProcessRecord, StateFileError, load

ROLES = ("store", "apiserver", "scheduler", "controller-manager", "node-agent", "pod")
"""Roles a selector may name (``pod`` is a container of a pod, not a launcher role)."""


class ChaosError(Exception):
    """Base class of the harness's own errors."""


class TargetNotFound(ChaosError):
    """No process matches the selector right now; the message says what was looked for."""


class ProcessGone(ChaosError):
    """The target exited (or its pid now belongs to another process) before the signal."""


class Pick(enum.StrEnum):
    """Which of a role's processes a selector means."""

    ANY = "any"
    ALL = "all"
    LEADER = "leader"
    FOLLOWER = "follower"
    STANDBY = "standby"


ELECTED = frozenset({"store", "scheduler", "controller-manager"})


@dataclass(frozen=True, kw_only=True)
class Selector:
    """Which processes to hit: a role and either a pick or a name.

    ``name`` is a process name for launcher roles (``store-1``, ``node-0``) and
    ``namespace/name`` for ``pod``, where the name may be a shell-style pattern
    (``default/web-*``; ``container`` then narrows to one container).
    """

    role: str
    pick: Pick = Pick.ANY
    name: str | None = None
    container: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.pick in (Pick.LEADER, Pick.FOLLOWER, Pick.STANDBY) and self.role not in ELECTED:
            raise ValueError(
                f"pick {self.pick.value!r} needs an elected role "
                f"(store, scheduler, controller-manager), not {self.role!r}"
            )
        if self.role == "pod" and not self.name:
            raise ValueError("a pod target needs name: NAMESPACE/NAME (or NAME in default)")
        if self.container is not None and self.role != "pod":
            raise ValueError(f"container only applies to role pod, not {self.role!r}")

    def describe(self) -> str:
        if self.name:
            return f"{self.role} {self.name}" + (f"/{self.container}" if self.container else "")
        return f"{self.role} ({self.pick.value})"


@dataclass(frozen=True)
class Proc:
    """One process to act on, as resolved at one moment: identity and where it keeps things."""

    role: str
    name: str
    pid: int
    pid_start: int | None
    group: bool = True
    """Signal the process group (components) or the pid alone (containers)."""
    ports: dict[str, int] = field(default_factory=dict, compare=False)
    data: str | None = None

    @property
    def alive(self) -> bool:
        return pids.alive(self.pid, self.pid_start)

    def endpoint(self, port: str = "client") -> str:
        return f"127.0.0.1:{self.ports[port]}"

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


def _proc(record: ProcessRecord) -> Proc | None:
    if record.pid is None or not pids.alive(record.pid, record.pid_start):
        return None
    return Proc(
        role=record.role,
        name=record.name,
        pid=record.pid,
        pid_start=record.pid_start,
        ports=dict(record.ports),
        data=record.data,
    )


class Cluster:
    """A cluster started by ``raftsman up``, read from its directory on every question.

    Never caches pids: each method reads ``state.json`` anew, because the supervisor
    rewrites it whenever a process starts or exits.
    """

    def __init__(self, directory: Path | str) -> None:
        self.layout = Layout.at(Path(directory))
        if not self.layout.state_file.exists():
            raise StateFileError(f"no cluster at {self.layout.root} (no state.json)")

    @property
    def dir(self) -> Path:
        return self.layout.root

    def state(self) -> ClusterState:
        return load(self.layout.state_file)

    def records(self, role: str | None = None) -> list[ProcessRecord]:
        state = self.state()
        return state.processes if role is None else state.by_role(role)

    def processes(self, role: str | None = None) -> list[Proc]:
        """The processes of ``role`` (every role when None) that run now."""
        return [p for r in self.records(role) if (p := _proc(r)) is not None]

    def process(self, name: str) -> Proc:
        for record in self.records():
            if record.name == name:
                proc = _proc(record)
                if proc is None:
                    raise TargetNotFound(f"process {name} is not running")
                return proc
        known = ", ".join(r.name for r in self.records())
        raise TargetNotFound(f"no process named {name!r} in the cluster (have: {known})")

    @property
    def restarts_enabled(self) -> bool:
        return self.state().restart

    def store_endpoints(self) -> list[str]:
        return [r.endpoint("client") for r in self.records("store")]

    def api_endpoints(self) -> list[str]:
        return [r.endpoint("api") for r in self.records("apiserver")]

    def restart_counts(self) -> dict[str, int]:
        return {r.name: r.restarts for r in self.records()}

    # ------------------------------------------------------------------ leaders

    async def store_leader(self) -> Proc | None:
        """The store member that says it leads (and is up), or None."""
        stores = self.processes("store")
        found: dict[str, bool] = {}

        async def ask(proc: Proc) -> None:
            status = await trio.to_thread.run_sync(
                partial(store_status, proc.endpoint("client"), timeout=1.0)
            )
            found[proc.name] = status is not None and status.is_leader

        async with trio.open_nursery() as nursery:
            for proc in stores:
                nursery.start_soon(ask, proc)
        leaders = [p for p in stores if found.get(p.name)]
        return leaders[0] if len(leaders) == 1 else None

    async def lease_holder(self, role: str) -> str | None:
        """The name in ``role``'s leader Lease (scheduler, controller-manager), or None."""
        namespace, name = LEADER_LEASES[role]
        for endpoint in self.api_endpoints():
            holder = await trio.to_thread.run_sync(
                partial(lease_holder, endpoint, namespace, name, timeout=1.0)
            )
            if holder is not None:
                return holder
        return None

    async def leader(self, role: str) -> Proc | None:
        """The running process that leads ``role`` now, or None."""
        if role == "store":
            return await self.store_leader()
        holder = await self.lease_holder(role)
        for proc in self.processes(role):
            if proc.name == holder:
                return proc
        return None

    async def serving_apiservers(self) -> list[Proc]:
        out = []
        for proc in self.processes("apiserver"):
            if await trio.to_thread.run_sync(
                partial(apiserver_ready, proc.endpoint("api"), timeout=1.0)
            ):
                out.append(proc)
        return out

    # ------------------------------------------------------------------ selection

    async def select(self, selector: Selector, rng: random.Random | None = None) -> list[Proc]:
        """The processes ``selector`` means now: one, or several for ``pick: all``.

        :class:`TargetNotFound` when nothing matches (a leader is being elected, the
        named process is down, the pod has no running container).
        """
        rng = rng or random.Random()
        if selector.role == "pod":
            return [await self._pod_process(selector, rng)]
        if selector.name is not None:
            proc = self.process(selector.name)
            if proc.role != selector.role:
                raise TargetNotFound(f"{selector.name} is a {proc.role}, not a {selector.role}")
            return [proc]
        running = self.processes(selector.role)
        if not running:
            raise TargetNotFound(f"no {selector.role} process is running")
        if selector.pick is Pick.ALL:
            return running
        if selector.pick is Pick.ANY:
            return [rng.choice(running)]
        leader = await self.leader(selector.role)
        if selector.pick is Pick.LEADER:
            if leader is None:
                raise TargetNotFound(f"no {selector.role} leader right now")
            return [leader]
        if leader is None:
            raise TargetNotFound(f"no {selector.role} leader right now, so no {selector.pick}")
        others = [p for p in running if p.name != leader.name]
        if not others:
            raise TargetNotFound(f"no {selector.role} {selector.pick.value} is running")
        return [rng.choice(others)]

    async def _pod_process(self, selector: Selector, rng: random.Random) -> Proc:
        from cli.launcher.pods import containers_dir
        from node_agent.runtime.process import ProcessRuntime

        assert selector.name is not None
        namespace, _, name = selector.name.rpartition("/")
        namespace = namespace or "default"
        candidates: list[Proc] = []
        for record in self.records("node-agent"):
            if record.data is None or not containers_dir(record.data).is_dir():
                continue
            runtime = ProcessRuntime(state_dir=containers_dir(record.data))
            for info in await runtime.containers():
                spec, status = info.spec, info.status
                if spec.pod_namespace != namespace or not fnmatch.fnmatchcase(spec.pod_name, name):
                    continue
                if selector.container and spec.container_name != selector.container:
                    continue
                if not status.running or status.pid is None:
                    continue
                candidates.append(
                    Proc(
                        role="pod",
                        name=f"{namespace}/{spec.pod_name}/{spec.container_name}@{record.name}",
                        pid=status.pid,
                        pid_start=pids.start_ticks(status.pid),
                        group=False,
                    )
                )
        if not candidates:
            raise TargetNotFound(f"pod {namespace}/{name} has no running container on any node")
        return rng.choice(candidates)

    # ------------------------------------------------------------------ signals

    def signal(self, proc: Proc, sig: signal.Signals) -> None:
        """Send ``sig`` to ``proc`` (its group for components) if it is still that process.

        :class:`ProcessGone` when its pid is gone or was reused (checked by start time).
        """
        if not pids.alive(proc.pid, proc.pid_start):  # a stopped (T) process counts
            raise ProcessGone(f"{proc} is gone; not signalling it")
        try:
            if proc.group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
        except ProcessLookupError:
            raise ProcessGone(f"{proc} exited before {sig.name} reached it") from None

    async def wait_replaced(self, proc: Proc, *, timeout: float) -> Proc:
        """Wait until the supervisor runs ``proc``'s process again under a new pid."""
        with trio.move_on_after(timeout):
            while True:  # polling another process's state file: no event to wait on
                try:
                    now = self.process(proc.name)
                except TargetNotFound:
                    now = None
                if now is not None and (now.pid, now.pid_start) != (proc.pid, proc.pid_start):
                    return now
                await trio.sleep(0.05)
        raise ChaosError(f"{proc.name} was not restarted within {timeout:g}s")

    async def wait_gone(self, procs: Sequence[Proc], *, timeout: float) -> None:
        with trio.move_on_after(timeout):
            while True:  # polling other processes: there is no event to wait on
                if not any(p.alive for p in procs):
                    return
                await trio.sleep(0.02)
        alive = ", ".join(str(p) for p in procs if p.alive)
        raise ChaosError(f"still running after {timeout:g}s: {alive}")
