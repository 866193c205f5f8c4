"""The roles a cluster is made of, as a table: how to run, restart and stop each one.

Roles: ``store`` (a raftstore member), ``apiserver`` (pointed at every store),
``scheduler`` and ``controller-manager`` (pointed at every API server, leader-elected
among their replicas), ``node-agent`` (one per node). A role says which
ports a process needs, how to build its command line from its record in the state file,
how its restarts are paced (:class:`~actors.runtime.BackoffPolicy`) and when its
supervisor gives up (:class:`~actors.runtime.RestartIntensity`), and how long it gets to
stop after SIGTERM before SIGKILL.

Roles start in table order and stop in reverse order, each role's processes together
(each process's own grace period bounds its stop): node agents first, so nothing is left
that writes pod status, then the control loops, the API servers, and the stores last.

A local cluster reacts faster than Kubernetes' defaults, which are tuned for large fleets
on real networks: :data:`LOCAL_TIMINGS` holds what ``up`` passes -- leader leases of 8 s
(renew deadline 6 s); node leases renewed every 2.5 s (a quarter of the grace, as
Kubernetes renews every 10 s of 40 s), nodes declared lost after 10 s and checked every
second; pods tolerating a lost node for 5 s. Tighter values (a 4 s lease,
4 s + 3 s for nodes) were tried and measured too tight on a saturated two-core machine:
leaders lost their lease about once a minute under load, and a node agent that took
longer than 7 s to restart had its pods evicted. With these, a killed leader is replaced
within about 8 s and a lost node's pods move within about 20 s; a restarting agent (2-8 s)
keeps its pods. Each is the matching component flag; docs/launcher.md lists them.

Components are started as ``python -m cli.main <role> ...`` with the interpreter that
runs the launcher, so a cluster runs the code it was launched from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from actors.runtime import BackoffPolicy, RestartIntensity

from . import links
from .state import ClusterState, ProcessRecord


@dataclass(frozen=True, kw_only=True)
class Role:
    name: str
    ports: tuple[str, ...]
    """Named ports each process of this role listens on, allocated by ``up``."""
    argv: Callable[[ProcessRecord, ClusterState], list[str]]
    backoff: BackoffPolicy
    intensity: RestartIntensity
    stop_grace: float
    """Seconds between SIGTERM and SIGKILL when stopping."""
    endpoint_port: str
    """The port clients use (``status`` shows it as the process's endpoint)."""


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def component_env() -> dict[str, str]:
    """The environment for launcher-started processes: ours, with this checkout importable.

    So ``python -m cli.main`` runs the same code as the launcher whatever the working
    directory, installed or not.
    """
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{path}" if path else str(PROJECT_ROOT)
    return env


def command(role: str) -> list[str]:
    """``python -m cli.main ROLE`` with this interpreter."""
    return [sys.executable, "-m", "cli.main", role]


def _store_argv(proc: ProcessRecord, cluster: ClusterState) -> list[str]:
    client = f"http://{proc.endpoint('client')}"
    peer = f"http://{proc.endpoint('peer')}"
    # With fault links, members know each other by their proxies' addresses (links.py).
    initial = ",".join(f"{p.name}={links.peer_url(cluster, p)}" for p in cluster.by_role("store"))
    assert proc.data is not None, "a store has a data directory"
    return [
        *command("store"),
        f"--name={proc.name}",
        f"--data-dir={proc.data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={links.peer_url(cluster, proc)}",
        f"--initial-cluster={initial}",
    ]


STORE = Role(
    name="store",
    ports=("client", "peer"),
    argv=_store_argv,
    # A crashed member comes back fast (0.1 s, doubling to 5 s): the other members keep
    # the cluster available meanwhile, and a member that cannot start costs little.
    backoff=BackoffPolicy(initial=0.1, factor=2.0, max_delay=5.0, reset_after=30.0),
    intensity=RestartIntensity(max_restarts=20, window=120.0),
    stop_grace=10.0,
    endpoint_port="client",
)


def _apiserver_argv(proc: ProcessRecord, cluster: ClusterState) -> list[str]:
    stores = ",".join(links.client_url(cluster, p) for p in cluster.by_role("store"))
    seconds = int(LOCAL_TIMINGS["default-toleration-seconds"])
    return [
        *command("apiserver"),
        f"--etcd-servers={stores}",
        f"--listen={proc.endpoint('api')}",
        f"--default-not-ready-toleration-seconds={seconds}",
        f"--default-unreachable-toleration-seconds={seconds}",
    ]


APISERVER = Role(
    name="apiserver",
    ports=("api",),
    argv=_apiserver_argv,
    # Stateless, and it waits for its store by itself: restart quickly, give up late.
    backoff=BackoffPolicy(initial=0.1, factor=2.0, max_delay=5.0, reset_after=30.0),
    intensity=RestartIntensity(max_restarts=20, window=120.0),
    stop_grace=5.0,
    endpoint_port="api",
)

LOCAL_TIMINGS: Mapping[str, float] = {
    "lease-duration": 8.0,
    "renew-deadline": 6.0,
    "retry-period": 1.0,
    "node-lease-period": 2.5,
    "node-monitor-grace-period": 10.0,
    "node-monitor-period": 1.0,
    "node-startup-grace-period": 30.0,
    "default-toleration-seconds": 5,
    "max-backoff": 10.0,
}


def _api_servers(cluster: ClusterState) -> str:
    return ",".join(p.endpoint("api") for p in cluster.by_role("apiserver"))


def _leader_flags(proc: ProcessRecord) -> list[str]:
    t = LOCAL_TIMINGS
    return [
        f"--identity={proc.name}",
        f"--lease-duration={t['lease-duration']:g}",
        f"--renew-deadline={t['renew-deadline']:g}",
        f"--retry-period={t['retry-period']:g}",
    ]


def _scheduler_argv(proc: ProcessRecord, cluster: ClusterState) -> list[str]:
    return [*command("scheduler"), f"--server={_api_servers(cluster)}", *_leader_flags(proc)]


def _controller_manager_argv(proc: ProcessRecord, cluster: ClusterState) -> list[str]:
    return [
        *command("controller-manager"),
        f"--server={_api_servers(cluster)}",
        *_leader_flags(proc),
        f"--node-monitor-grace-period={LOCAL_TIMINGS['node-monitor-grace-period']:g}",
        f"--node-monitor-period={LOCAL_TIMINGS['node-monitor-period']:g}",
        f"--node-startup-grace-period={LOCAL_TIMINGS['node-startup-grace-period']:g}",
        f"--default-toleration-seconds={int(LOCAL_TIMINGS['default-toleration-seconds'])}",
    ]


def _node_agent_argv(proc: ProcessRecord, cluster: ClusterState) -> list[str]:
    assert proc.data is not None, "a node agent has a data directory"
    return [
        *command("node-agent"),
        f"--name={proc.name}",
        f"--server={_api_servers(cluster)}",
        f"--runtime={cluster.runtime}",
        f"--data-dir={proc.data}",
        f"--port={proc.ports['agent']}",
        f"--lease-period={LOCAL_TIMINGS['node-lease-period']:g}",
        f"--max-backoff={LOCAL_TIMINGS['max-backoff']:g}",
    ]


_CONTROL_LOOP_BACKOFF = BackoffPolicy(initial=0.2, factor=2.0, max_delay=5.0, reset_after=30.0)

SCHEDULER = Role(
    name="scheduler",
    ports=(),
    argv=_scheduler_argv,
    backoff=_CONTROL_LOOP_BACKOFF,
    intensity=RestartIntensity(max_restarts=20, window=120.0),
    stop_grace=5.0,
    endpoint_port="",
)

CONTROLLER_MANAGER = Role(
    name="controller-manager",
    ports=(),
    argv=_controller_manager_argv,
    backoff=_CONTROL_LOOP_BACKOFF,
    intensity=RestartIntensity(max_restarts=20, window=120.0),
    stop_grace=5.0,
    endpoint_port="",
)

NODE_AGENT = Role(
    name="node-agent",
    ports=("agent",),
    argv=_node_agent_argv,
    backoff=_CONTROL_LOOP_BACKOFF,
    intensity=RestartIntensity(max_restarts=20, window=120.0),
    stop_grace=10.0,
    endpoint_port="agent",
)

ROLES: Mapping[str, Role] = {
    role.name: role for role in (STORE, APISERVER, SCHEDULER, CONTROLLER_MANAGER, NODE_AGENT)
}
"""Every role, in start order."""

HAS_DATA = frozenset({"store", "node-agent"})
"""Roles whose processes keep a data directory."""
