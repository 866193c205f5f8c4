"""Building Service and Endpoints objects for proxy tests, as the API server stores them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from proto.k8s import core_pb2


@dataclass
class Port:
    name: str
    port: int
    protocol: str = "TCP"
    node_port: int = 0
    target_port: str | int | None = None


def service(
    name: str,
    cluster_ip: str,
    ports: Sequence[Port],
    *,
    namespace: str = "default",
    type: str = "ClusterIP",
    affinity: str = "None",
) -> core_pb2.Service:
    svc = core_pb2.Service(api_version="v1", kind="Service")
    svc.metadata.name = name
    svc.metadata.namespace = namespace
    svc.spec.cluster_ip = cluster_ip
    svc.spec.type = type
    svc.spec.session_affinity = affinity
    for p in ports:
        sp = svc.spec.ports.add(name=p.name, protocol=p.protocol, port=p.port)
        sp.node_port = p.node_port
        if isinstance(p.target_port, int):
            sp.target_port.int_val = p.target_port
        elif isinstance(p.target_port, str):
            sp.target_port.str_val = p.target_port
    return svc


@dataclass
class Subset:
    addresses: Sequence[str]
    ports: Sequence[tuple[str, int]]
    not_ready: Sequence[str] = field(default_factory=list)
    protocol: str = "TCP"


def endpoints(
    name: str, subsets: Sequence[Subset], *, namespace: str = "default"
) -> core_pb2.Endpoints:
    eps = core_pb2.Endpoints(api_version="v1", kind="Endpoints")
    eps.metadata.name = name
    eps.metadata.namespace = namespace
    for s in subsets:
        subset = eps.subsets.add()
        for ip in s.addresses:
            subset.addresses.add(ip=ip)
        for ip in s.not_ready:
            subset.not_ready_addresses.add(ip=ip)
        for port_name, port in s.ports:
            subset.ports.add(name=port_name, port=port, protocol=s.protocol)
    return eps
