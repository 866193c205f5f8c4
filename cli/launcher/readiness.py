"""Asking components how they are: store members' Maintenance.Status and API servers'
health, over plain (sync) gRPC.

The CLI commands are short synchronous programs, so they use grpcio's blocking stubs
rather than starting trio and the asyncio bridge for a handful of unary calls.

A store cluster is *ready* when every member answers Status and all of them name the same
leader, which is one of them (its ``header.member_id``). Then a write through any member
reaches a leader that the whole cluster follows. An API server is ready when its health
check answers SERVING. A cluster is ready when both are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def cluster_ready(
    store_endpoints: Sequence[str], api_endpoints: Sequence[str], *, timeout: float = 1.0
) -> bool:
    """Stores ready (:func:`stores_ready`), then every API server SERVING."""
    return stores_ready(store_endpoints, timeout=timeout) and all(
        apiserver_ready(endpoint, timeout=timeout) for endpoint in api_endpoints
    )
