"""From Services and Endpoints to what the proxy must do: the pure half of the proxy.

:func:`build_plan` turns the full current set of Services and Endpoints into one
:class:`PortPlan` per Service port: the addresses to listen on (its frontends) and the
ready endpoints to forward to (its backends). It does no I/O and keeps no state, so the
proxy can call it on every update and tests can check it on plain objects.

The rules, as kube-proxy applies them
    * A Service of type ExternalName has no ports to proxy and is left out.
    * Every other Service port listens on ``clusterIP:port`` unless the Service is
      headless (``clusterIP: None``) or has no clusterIP yet (empty).
    * Types NodePort and LoadBalancer also listen on ``node_address:nodePort`` for each
      port that has a nodePort.
    * Only TCP is proxied. A UDP or SCTP port, a clusterIP that is not an IPv4 address, or
      a port number out of 1..65535 gives a plan with a ``skipped`` reason and no backends.
    * Backends come from the Endpoints object of the same namespace and name: for each
      subset, the EndpointPort whose name equals the Service port's name (Endpoints ports
      are already resolved numbers, so a named ``targetPort`` needs no lookup here) paired
      with every address of ``addresses`` -- never ``notReadyAddresses``. When the Service
      has a single port and a subset a single unnamed port, that port is used whatever
      the Service port's name. Duplicates are removed; the order is that of the subsets.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from proto.k8s import core_pb2

__all__ = [
    "Backend",
    "Frontend",
    "FrontendKind",
    "PortPlan",
    "ServicePortName",
    "build_plan",
]

_NODE_PORT_TYPES = frozenset({"NodePort", "LoadBalancer"})
_NO_CLUSTER_IP = frozenset({"", "None"})


@dataclass(frozen=True, order=True)
class ServicePortName:
    """One port of one Service: ``namespace/name:port`` (port is the ServicePort name)."""

    namespace: str
    name: str
    port: str = ""

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.service}:{self.port}" if self.port else self.service


class FrontendKind(enum.Enum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"


@dataclass(frozen=True, order=True)
class Frontend:
    """An address the proxy listens on for a Service port."""

    address: str
    port: int
    kind: FrontendKind

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, order=True)
class Backend:
    """A ready endpoint: pod IP and resolved target port."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class PortPlan:
    """What the proxy does for one Service port.

    ``skipped`` is None for a port the proxy serves, else why it does not (and then
    ``backends`` is empty). A served port with no backends is not listened on, so that
    connections to it are refused.
    """

    name: ServicePortName
    protocol: str
    frontends: tuple[Frontend, ...]
    backends: tuple[Backend, ...]
    client_ip_affinity: bool
    skipped: str | None = None


def build_plan(
    services: Iterable[core_pb2.Service],
    endpoints: Iterable[core_pb2.Endpoints],
    *,
    node_address: str,
) -> list[PortPlan]:
    """One :class:`PortPlan` per Service port that has at least one frontend, sorted by
    name. ``node_address`` is where NodePorts listen."""
    by_key = {(e.metadata.namespace, e.metadata.name): e for e in endpoints}
    plans: list[PortPlan] = []
    for svc in services:
        spec = svc.spec
        if spec.type == "ExternalName":
            continue
        eps = by_key.get((svc.metadata.namespace, svc.metadata.name))
        single_port = len(spec.ports) == 1
        for sp in spec.ports:
            plan = _plan_port(svc, sp, eps, node_address=node_address, single=single_port)
            if plan.frontends:
                plans.append(plan)
    plans.sort(key=lambda p: p.name)
    return plans


def _plan_port(
    svc: core_pb2.Service,
    sp: core_pb2.ServicePort,
    eps: core_pb2.Endpoints | None,
    *,
    node_address: str,
    single: bool,
) -> PortPlan:
    spec = svc.spec
    name = ServicePortName(svc.metadata.namespace, svc.metadata.name, sp.name)
    protocol = sp.protocol or "TCP"
    frontends: list[Frontend] = []
    problems: list[str] = []
    if spec.cluster_ip not in _NO_CLUSTER_IP:
        if _is_ipv4(spec.cluster_ip):
            if _valid_port(sp.port):
                frontends.append(Frontend(spec.cluster_ip, sp.port, FrontendKind.CLUSTER_IP))
            else:
                problems.append(f"port {sp.port} is not in 1..65535")
        else:
            problems.append(f"clusterIP {spec.cluster_ip!r} is not an IPv4 address")
    if spec.type in _NODE_PORT_TYPES and sp.node_port:
        if _valid_port(sp.node_port):
            frontends.append(Frontend(node_address, sp.node_port, FrontendKind.NODE_PORT))
        else:
            problems.append(f"nodePort {sp.node_port} is not in 1..65535")
    if protocol != "TCP":
        problems.insert(0, f"protocol {protocol} is not proxied (only TCP is)")
    affinity = spec.session_affinity == "ClientIP"
    if problems:
        if not frontends and spec.cluster_ip not in _NO_CLUSTER_IP:
            # A bad clusterIP or port: keep the port visible so that the reason shows.
            frontends.append(Frontend(spec.cluster_ip, sp.port, FrontendKind.CLUSTER_IP))
        reason = "; ".join(problems)
        return PortPlan(name, protocol, tuple(frontends), (), affinity, skipped=reason)
    backends = _backends(sp, eps, protocol=protocol, single=single) if eps else ()
    return PortPlan(name, protocol, tuple(frontends), backends, affinity)


def _backends(
    sp: core_pb2.ServicePort, eps: core_pb2.Endpoints, *, protocol: str, single: bool
) -> tuple[Backend, ...]:
    found: dict[Backend, None] = {}
    for subset in eps.subsets:
        port = _subset_port(sp, subset, protocol=protocol, single=single)
        if port is None:
            continue
        for address in subset.addresses:
            if _is_ipv4(address.ip):
                found.setdefault(Backend(address.ip, port), None)
    return tuple(found)


def _subset_port(
    sp: core_pb2.ServicePort, subset: core_pb2.EndpointSubset, *, protocol: str, single: bool
) -> int | None:
    candidates = [p for p in subset.ports if (p.protocol or "TCP") == protocol]
    for p in candidates:
        if p.name == sp.name and _valid_port(p.port):
            return p.port
    if single and len(candidates) == 1 and not candidates[0].name:
        port = candidates[0].port
        return port if _valid_port(port) else None
    return None


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _valid_port(port: int) -> bool:
    return 1 <= port <= 65535
