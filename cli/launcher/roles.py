"""The roles a cluster is made of, as a table: how to run, restart and stop each one.

Today there are two roles: ``store`` (a raftstore member) and ``apiserver`` (the API
server, pointed at every store); the scheduler, controller manager and node agents join
the table as they are written. A role says which
ports a process needs, how to build its command line from its record in the state file,
how its restarts are paced (:class:`~actors.runtime.BackoffPolicy`) and when its
supervisor gives up (:class:`~actors.runtime.RestartIntensity`), and how long it gets to
stop after SIGTERM before SIGKILL.

Roles start in table order and are stopped all at once (each process's own grace period
bounds the stop). Components are started as ``python -m cli.main <role> ...`` with the
interpreter that runs the launcher, so a cluster runs the code it was launched from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from actors.runtime import BackoffPolicy, RestartIntensity

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
    initial = ",".join(f"{p.name}=http://{p.endpoint('peer')}" for p in cluster.by_role("store"))
    assert proc.data is not None, "a store has a data directory"
    return [
        *command("store"),
        f"--name={proc.name}",
        f"--data-dir={proc.data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
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
    stores = ",".join(f"http://{p.endpoint('client')}" for p in cluster.by_role("store"))
    return [*command("apiserver"), f"--etcd-servers={stores}", f"--listen={proc.endpoint('api')}"]


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

ROLES: Mapping[str, Role] = {role.name: role for role in (STORE, APISERVER)}
"""Every role, in start order."""
