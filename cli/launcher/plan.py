"""Planning a new cluster: process names, ports and paths, as an initial state.

Ports are on 127.0.0.1: either free ones picked by the kernel (bind port 0, note the
number, close) or consecutive ones from ``--base-port``. Either way they are checked to be
bindable now; another program can still take a port before the component binds it, and a
component that cannot bind crashes and is restarted by the supervisor like any other crash.
A stopped cluster restarts on the ports of its plan, so they are checked again by ``up``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from contextlib import ExitStack

from .layout import Layout
from .roles import HAS_DATA, ROLES
from .state import ClusterState, ProcessRecord, SupervisorRecord

LOOPBACK = "127.0.0.1"


class PlanError(Exception):
    """The cluster cannot be planned or started as asked; the message says why."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


def busy_ports(ports: Iterable[int]) -> list[int]:
    """The ports among ``ports`` that cannot be bound on 127.0.0.1 right now."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                busy.append(port)
    return busy


def plan_cluster(
    layout: Layout,
    *,
    name: str,
    stores: int,
    base_port: int | None,
    restart: bool,
    apiservers: int = 1,
    schedulers: int = 0,
    controller_managers: int = 0,
    nodes: int = 0,
    runtime: str = "process",
) -> ClusterState:
    """The initial state of a new cluster: its processes role by role in start order
    (ports in that order), nothing running. Node agents are named ``node-0``, ... (their
    Node's name)."""
    if stores < 1:
        raise PlanError(f"--stores must be at least 1, not {stores}")
    counts = {
        "store": stores,
        "apiserver": apiservers,
        "scheduler": schedulers,
        "controller-manager": controller_managers,
        "node-agent": nodes,
    }
    for role_name, count in counts.items():
        if count < 0:
            raise PlanError(f"--{role_name}s must be at least 0, not {count}")
    needs_api = [r for r in ("scheduler", "controller-manager", "node-agent") if counts[r]]
    if needs_api and not apiservers:
        raise PlanError(
            f"{', '.join(needs_api)} need an API server: --apiservers must be at least 1"
        )
    if runtime not in ("process", "sim"):
        raise PlanError(f"--runtime must be 'process' or 'sim', not {runtime!r}")
    needed = sum(len(ROLES[role].ports) * count for role, count in counts.items())
    if base_port is None:
        ports = free_ports(needed)
    else:
        if not 1024 <= base_port <= 65535 - needed:
            raise PlanError(f"--base-port {base_port}: needs {needed} ports from 1024..65535")
        ports = list(range(base_port, base_port + needed))
        busy = busy_ports(ports)
        if busy:
            raise PlanError(f"--base-port {base_port}: port(s) {', '.join(map(str, busy))} in use")
    processes = []
    next_port = iter(ports)
    for role_name, count in counts.items():
        role = ROLES[role_name]
        for i in range(count):
            proc_name = f"node-{i}" if role.name == "node-agent" else f"{role.name}-{i}"
            own = [next(next_port) for _ in role.ports]
            processes.append(
                ProcessRecord(
                    role=role.name,
                    name=proc_name,
                    ports=dict(zip(role.ports, own, strict=True)),
                    log=str(layout.log_file(proc_name)),
                    data=str(layout.data_dir(proc_name)) if role.name in HAS_DATA else None,
                )
            )
    return ClusterState(
        name=name,
        dir=str(layout.root),
        supervisor=SupervisorRecord(log=str(layout.supervisor_log)),
        processes=processes,
        restart=restart,
        runtime=runtime,
    )
