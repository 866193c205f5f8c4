"""Asking components how they are: store members' Maintenance.Status and API servers'
health, over plain (sync) gRPC.

The CLI commands are short synchronous programs, so they use grpcio's blocking stubs
rather than starting trio and the asyncio bridge for a handful of unary calls.

A store cluster is *ready* when every member answers Status and all of them name the same
leader, which is one of them (its ``header.member_id``). Then a write through any member
reaches a leader that the whole cluster follows. An API server is ready when its health
check answers SERVING. A node is ready when its Node's Ready condition is True. A
cluster is ready when all of them are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc


@dataclass(frozen=True)
class MemberStatus:
    endpoint: str
    member_id: int
    leader_id: int
    raft_term: int

    @property
    def is_leader(self) -> bool:
        return self.leader_id != 0 and self.leader_id == self.member_id


def store_status(endpoint: str, *, timeout: float = 1.0) -> MemberStatus | None:
    """The member's Status, or None when it does not answer within ``timeout``."""
    with grpc.insecure_channel(endpoint) as channel:
        try:
            reply = rpc_pb2_grpc.MaintenanceStub(channel).Status(
                rpc_pb2.StatusRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return None
    return MemberStatus(
        endpoint=endpoint,
        member_id=reply.header.member_id,
        leader_id=reply.leader,
        raft_term=reply.raftTerm,
    )


def statuses(endpoints: Sequence[str], *, timeout: float = 1.0) -> Mapping[str, MemberStatus]:
    """Status of every member that answers, by endpoint."""
    out = {}
    for endpoint in endpoints:
        status = store_status(endpoint, timeout=timeout)
        if status is not None:
            out[endpoint] = status
    return out


def stores_ready(endpoints: Sequence[str], *, timeout: float = 1.0) -> bool:
    """Every member answers and all agree on one leader that is among them."""
    found = statuses(endpoints, timeout=timeout)
    if len(found) != len(endpoints):
        return False
    leaders = {s.leader_id for s in found.values()}
    members = {s.member_id for s in found.values()}
    return len(leaders) == 1 and leaders <= members


def apiserver_ready(endpoint: str, *, timeout: float = 1.0) -> bool:
    """The API server reports SERVING (``grpc.health.v1``): listening, caches synced, store
    reachable."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _api_call(endpoint: str, method: str, request: Any, *, timeout: float) -> Any | None:
    from proto.apiserver import apiserver_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        try:
            return getattr(apiserver_pb2_grpc.ApiServerStub(channel), method)(
                request, timeout=timeout
            )
        except grpc.RpcError:
            return None


def ready_nodes(endpoint: str, *, timeout: float = 1.0) -> set[str] | None:
    """Names of the Nodes whose Ready condition is True, or None if the API server does
    not answer."""
    from proto.apiserver import apiserver_pb2
    from proto.k8s import core_pb2

    reply = _api_call(endpoint, "List", apiserver_pb2.ListRequest(kind="Node"), timeout=timeout)
    if reply is None:
        return None
    ready = set()
    for item in reply.items:
        node = core_pb2.Node()
        item.Unpack(node)
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions):
            ready.add(node.metadata.name)
    return ready


def lease_holder(endpoint: str, namespace: str, name: str, *, timeout: float = 1.0) -> str | None:
    """The holderIdentity of the Lease ``namespace/name``, or None if unknown."""
    from proto.apiserver import apiserver_pb2
    from proto.k8s import coordination_pb2

    request = apiserver_pb2.GetRequest(kind="Lease", namespace=namespace, name=name)
    reply = _api_call(endpoint, "Get", request, timeout=timeout)
    if reply is None:
        return None
    lease = coordination_pb2.Lease()
    reply.object.Unpack(lease)
    return lease.spec.holder_identity or None


def cluster_ready(
    store_endpoints: Sequence[str],
    api_endpoints: Sequence[str],
    *,
    nodes: Sequence[str] = (),
    timeout: float = 1.0,
) -> bool:
    """Stores ready (:func:`stores_ready`), every API server SERVING, and every node in
    ``nodes`` Ready."""
    if not stores_ready(store_endpoints, timeout=timeout):
        return False
    if not all(apiserver_ready(endpoint, timeout=timeout) for endpoint in api_endpoints):
        return False
    if nodes and api_endpoints:
        ready = ready_nodes(api_endpoints[0], timeout=timeout)
        return ready is not None and set(nodes) <= ready
    return True
