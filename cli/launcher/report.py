"""What ``status`` and ``up`` print: process rows (table or JSON) and the ready summary.

A row's ``state`` is what the supervisor recorded, corrected by the facts: a process whose
pid is gone is ``down`` whatever the file says, and one that still runs after its
supervisor was killed is ``up`` (unsupervised; ``down`` or ``up`` cleans that up). ``leader``
is asked of each store that is up (Maintenance.Status: ``leader == header.member_id``),
and for schedulers and controller managers read from their leader Lease through an API
server (``holderIdentity`` is the process name).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass

from . import pids
from .layout import DEFAULT_NAME, Layout, default_dir
from .readiness import lease_holder, store_status
from .roles import ROLES
from .state import ClusterState, ProcessState


@dataclass(frozen=True)
class Row:
    role: str
    name: str
    pid: int | None
    state: str
    restarts: int
    leader: bool
    ports: dict[str, int]
    endpoint: str | None
    log: str


LEADER_LEASES = {
    "scheduler": ("kube-system", "raftsman-scheduler"),
    "controller-manager": ("kube-system", "raftsman-controller-manager"),
}


def _lease_holders(state: ClusterState) -> dict[str, str | None]:
    apis = [p.endpoint("api") for p in state.by_role("apiserver") if pids.alive(p.pid, p.pid_start)]
    holders: dict[str, str | None] = {}
    for role, (namespace, name) in LEADER_LEASES.items():
        holders[role] = None
        if not state.by_role(role):
            continue
        for endpoint in apis:
            holder = lease_holder(endpoint, namespace, name, timeout=1.0)
            if holder is not None:
                holders[role] = holder
                break
    return holders


def rows(state: ClusterState) -> list[Row]:
    sup = state.supervisor
    holders = _lease_holders(state)
    sup_alive = pids.alive(sup.pid, sup.pid_start)
    out = [
        Row(
            role="supervisor",
            name="supervisor",
            pid=sup.pid if sup_alive else None,
            state=("up" if sup.state.value == "running" else sup.state.value)
            if sup_alive
            else ("failed" if sup.state.value == "failed" else "down"),
            restarts=0,
            leader=False,
            ports={},
            endpoint=None,
            log=sup.log,
        )
    ]
    for proc in state.processes:
        # A process outlives a supervisor that was SIGKILLed: it is up, if unsupervised.
        alive = pids.alive(proc.pid, proc.pid_start)
        if alive:
            recorded = proc.state.value if sup_alive else ProcessState.UP.value
        elif sup_alive and proc.state is not ProcessState.UP:
            recorded = proc.state.value  # restarting or failed, as recorded
        else:
            recorded = ProcessState.DOWN.value
        role = ROLES.get(proc.role)
        port = role.endpoint_port if role is not None else "client"
        endpoint = proc.endpoint(port) if port in proc.ports else None
        leader = False
        if alive and proc.role == "store" and endpoint is not None:
            status = store_status(endpoint, timeout=1.0)
            leader = status is not None and status.is_leader
        elif alive and proc.role in LEADER_LEASES:
            leader = holders.get(proc.role) == proc.name
        out.append(
            Row(
                role=proc.role,
                name=proc.name,
                pid=proc.pid if alive else None,
                state=recorded,
                restarts=proc.restarts,
                leader=leader,
                ports=dict(proc.ports),
                endpoint=endpoint,
                log=proc.log,
            )
        )
    return out


def rows_json(table: list[Row]) -> str:
    return json.dumps([asdict(r) for r in table], indent=2)


def rows_text(table: list[Row]) -> str:
    header = ("ROLE", "NAME", "PID", "STATE", "RESTARTS", "LEADER", "PORTS")
    lines = [header]
    for r in table:
        ports = ",".join(f"{k}={v}" for k, v in r.ports.items()) or "-"
        elected = r.role == "store" or r.role in LEADER_LEASES
        leader = ("yes" if r.leader else "no") if elected else "-"
        pid = str(r.pid) if r.pid is not None else "-"
        lines.append((r.role, r.name, pid, r.state, str(r.restarts), leader, ports))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def where_flag(layout: Layout, name: str) -> str:
    """The shortest flag that names this cluster again: '', --name NAME or --dir DIR."""
    if layout.root == default_dir(DEFAULT_NAME):
        return ""
    if layout.root == default_dir(name):
        return f" --name {shlex.quote(name)}"
    return f" --dir {shlex.quote(str(layout.root))}"


def shape(state: ClusterState) -> str:
    """``3 stores, 1 apiserver, 3 nodes (process runtime)``."""
    parts = []
    for role in ROLES:
        count = len(state.by_role(role))
        if count or role == "store":
            noun = "node" if role == "node-agent" else role
            parts.append(f"{count} {noun}{'' if count == 1 else 's'}")
    if state.by_role("node-agent"):
        parts[-1] += f" ({state.runtime} runtime)"
    return ", ".join(parts)


def summary(layout: Layout, state: ClusterState, *, headline: str) -> str:
    stores = state.by_role("store")
    endpoints = ",".join(p.endpoint("client") for p in stores)
    flag = where_flag(layout, state.name)
    lines = [headline]
    for proc in stores:
        lines.append(f"  {proc.name:<12} http://{proc.endpoint('client')}")
    for proc in state.by_role("apiserver"):
        lines.append(f"  {proc.name:<12} {proc.endpoint('api')}")
    nodes = state.by_role("node-agent")
    if nodes:
        lines.append(f"  nodes        {', '.join(p.name for p in nodes)} ({state.runtime} runtime)")
    lines += [
        "",
        f"client config  {layout.config_file}",
    ]
    if state.by_role("apiserver"):
        lines.append(f"try            raftsman apply -f examples/{flag}; raftsman get all{flag}")
        if nodes:
            lines.append(
                f"               raftsman get pods -o wide{flag}; raftsman get nodes{flag}"
            )
    lines += [
        f"try            ETCDCTL_API=3 etcdctl --endpoints={endpoints} put hello world",
        f"logs           {layout.logs_dir}/",
        f"data           {layout.data_root}/",
        f"status         raftsman status{flag}",
        f"stop           raftsman down{flag}   (keeps the data; --purge deletes it)",
    ]
    return "\n".join(lines)
