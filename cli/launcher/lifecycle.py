"""Starting and stopping a cluster from the CLI: what ``up`` and ``down`` do.

Both run under the cluster directory's lock, so two of them never interleave on one
cluster. Neither writes the state file while a supervisor runs (the supervisor is its only
writer then); ``up`` writes the plan before starting the supervisor, ``down`` writes the
final state only once the supervisor is gone and had no chance to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from . import pids
from .layout import Layout
from .plan import PlanError, busy_ports, plan_cluster
from .pods import stop_node_pods
from .readiness import cluster_ready
from .roles import ROLES, command, component_env
from .state import (
    ClusterState,
    ProcessState,
    StateFileError,
    SupervisorState,
    load,
    save,
)

DEFAULT_STORES = 3
DEFAULT_APISERVERS = 2
DEFAULT_COUNTS: dict[str, int] = {
    "store": DEFAULT_STORES,
    "apiserver": DEFAULT_APISERVERS,
    "scheduler": 2,
    "controller-manager": 2,
    "node-agent": 3,
}
"""How many processes of each role a new cluster gets when ``up`` is not told."""
DEFAULT_RUNTIME = "process"
READY_TIMEOUT = 30.0
# The supervisor gives each process its role's grace; allow that plus a margin.
SUPERVISOR_GRACE = max(role.stop_grace for role in ROLES.values()) + 5.0


class LaunchError(Exception):
    """``up`` could not start the cluster; the message says why and where to look."""


def supervisor_running(state: ClusterState) -> bool:
    return pids.alive(state.supervisor.pid, state.supervisor.pid_start)


def load_if_any(layout: Layout) -> ClusterState | None:
    if not layout.state_file.exists():
        return None
    return load(layout.state_file)


def prepare(
    layout: Layout,
    *,
    name: str,
    stores: int | None = None,
    base_port: int | None,
    restart: bool,
    apiservers: int | None = None,
    counts: Mapping[str, int | None] | None = None,
    runtime: str | None = None,
) -> tuple[ClusterState, bool]:
    """The state to start from and whether it is new; the caller holds the lock.

    ``counts`` maps a role to how many processes it should have (None or absent: the
    default for a new cluster, whatever it has for an existing one). A stopped cluster
    is started again on its own plan (ports, data); asking it for a different shape is
    an error rather than a silent rebuild.
    """
    asked: dict[str, int | None] = dict(counts or {})
    if stores is not None:
        asked["store"] = stores
    if apiservers is not None:
        asked["apiserver"] = apiservers
    existing = load_if_any(layout)
    if existing is None:
        wanted = {
            role: default if asked.get(role) is None else asked[role]
            for role, default in DEFAULT_COUNTS.items()
        }
        state = plan_cluster(
            layout,
            name=name,
            stores=wanted["store"] or 0,
            base_port=base_port,
            restart=restart,
            apiservers=wanted["apiserver"] or 0,
            schedulers=wanted["scheduler"] or 0,
            controller_managers=wanted["controller-manager"] or 0,
            nodes=wanted["node-agent"] or 0,
            runtime=runtime or DEFAULT_RUNTIME,
        )
        layout.create()
        save(layout.state_file, state)
        return state, True
    for role, count in asked.items():
        have = len(existing.by_role(role))
        if count is not None and count != have:
            label = "nodes" if role == "node-agent" else f"{role}s"
            raise PlanError(
                f"the cluster at {layout.root} has {have} {label}, not {count}; "
                f"`raftsman down --purge --dir {layout.root}` first to start a new one"
            )
    if runtime is not None and runtime != existing.runtime:
        raise PlanError(
            f"the cluster at {layout.root} runs the {existing.runtime!r} runtime, not "
            f"{runtime!r}; `raftsman down --purge --dir {layout.root}` first to start a new one"
        )
    if base_port is not None:
        first = min(p for proc in existing.processes for p in proc.ports.values())
        if first != base_port:
            raise PlanError(
                f"the cluster at {layout.root} uses ports from {first}, not --base-port "
                f"{base_port}; `raftsman down --purge` first to start a new one"
            )
    ports = [p for proc in existing.processes for p in proc.ports.values()]
    busy = busy_ports(ports)
    if busy:
        raise PlanError(
            f"cannot restart the cluster at {layout.root}: its port(s) "
            f"{', '.join(map(str, busy))} are in use by another program"
        )
    existing.restart = restart
    layout.create()
    save(layout.state_file, existing)
    return existing, False


def spawn_supervisor(layout: Layout) -> subprocess.Popen[bytes]:
    """Start ``raftsman supervise --dir DIR`` detached: its own session, output to its log."""
    with open(layout.supervisor_log, "ab") as logfile:
        return subprocess.Popen(
            [*command("supervise"), f"--dir={layout.root}"],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            cwd=layout.root,
            env=component_env(),
            start_new_session=True,
        )


def store_endpoints(state: ClusterState) -> list[str]:
    return [p.endpoint("client") for p in state.by_role("store")]


def api_endpoints(state: ClusterState) -> list[str]:
    return [p.endpoint("api") for p in state.by_role("apiserver")]


def node_names(state: ClusterState) -> list[str]:
    return [p.name for p in state.by_role("node-agent")]


def wait_ready(
    layout: Layout,
    state: ClusterState,
    *,
    timeout: float,
    supervisor_exited: Callable[[], int | None],
) -> float:
    """Poll until every store and API server is ready (:func:`.readiness.cluster_ready`);
    the seconds it took. :class:`LaunchError` if not."""
    endpoints, apis, nodes = store_endpoints(state), api_endpoints(state), node_names(state)
    start = time.monotonic()
    while not cluster_ready(endpoints, apis, nodes=nodes, timeout=0.5):
        code = supervisor_exited()
        if code is not None:
            raise LaunchError(
                f"the supervisor exited with status {code} before the cluster was ready; "
                f"see {layout.supervisor_log} and {layout.logs_dir}/"
            )
        if time.monotonic() - start > timeout:
            raise LaunchError(
                f"the cluster was not ready after {timeout:g}s (every store answering, one "
                f"leader, every apiserver SERVING, every node Ready); see the logs in "
                f"{layout.logs_dir}/"
            )
        time.sleep(0.05)
    return time.monotonic() - start


@dataclass(frozen=True)
class StopReport:
    was_running: bool
    forced: bool
    """The supervisor or a process had to be SIGKILLed."""
    leftover: tuple[int, ...]
    """Pids still alive after everything (should be empty)."""


def stop(layout: Layout, state: ClusterState, *, grace: float = SUPERVISOR_GRACE) -> StopReport:
    """Stop the cluster: SIGTERM the supervisor, SIGKILL what is left after ``grace``."""
    sup = state.supervisor
    was_running = supervisor_running(state)
    forced = False
    if was_running:
        assert sup.pid is not None
        try:
            os.kill(sup.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not pids.wait_gone([(sup.pid, sup.pid_start)], timeout=grace):
            forced = True
            try:  # by pid, not group: in the foreground the supervisor leads no group
                os.kill(sup.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Processes left behind by a supervisor that was killed, or that we just killed.
    reloaded = load_if_any(layout) or state
    children = [(p.pid, p.pid_start) for p in reloaded.processes if pids.alive(p.pid, p.pid_start)]
    if children:
        for pid, _ in children:
            assert pid is not None
            pids.signal_group(pid, signal.SIGTERM)
        if not pids.wait_gone(children, timeout=max(r.stop_grace for r in ROLES.values())):
            forced = True
            for pid, _ in children:
                assert pid is not None
                pids.signal_group(pid, signal.SIGKILL)
    everyone = [(sup.pid, sup.pid_start), *children]
    pids.wait_gone(everyone, timeout=2.0)
    if reloaded.runtime == "process":
        # Pods whose agent was killed with the supervisor (a clean stop already did this).
        for proc in reloaded.by_role("node-agent"):
            if proc.data is not None:
                trio.run(stop_node_pods, proc.data)
    leftover = tuple(pid for pid, start in everyone if pid is not None and pids.alive(pid, start))
    final = load_if_any(layout) or reloaded
    if final.supervisor.state not in (SupervisorState.STOPPED, SupervisorState.FAILED) or any(
        p.state in (ProcessState.UP, ProcessState.RESTARTING) for p in final.processes
    ):
        final.supervisor.state = SupervisorState.STOPPED
        for proc in final.processes:
            if proc.state is not ProcessState.FAILED:
                proc.state = ProcessState.DOWN
        save(layout.state_file, final)
    return StopReport(was_running=was_running, forced=forced, leftover=leftover)


__all__ = [
    "DEFAULT_APISERVERS",
    "DEFAULT_STORES",
    "READY_TIMEOUT",
    "LaunchError",
    "PlanError",
    "StateFileError",
    "StopReport",
    "api_endpoints",
    "load_if_any",
    "prepare",
    "spawn_supervisor",
    "stop",
    "store_endpoints",
    "supervisor_running",
    "wait_ready",
]
