"""Blocking etcd-API calls for process-level store tests (plain grpc, no trio)."""

from __future__ import annotations

import grpc

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.support.raftstore import StoreCluster


def put(endpoint: str, key: str, value: str, *, timeout: float = 5.0) -> int:
    """Put through one member; the revision of the write."""
    with grpc.insecure_channel(endpoint) as channel:
        response = rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=key.encode(), value=value.encode()), timeout=timeout
        )
    return int(response.header.revision)


def get_prefix(endpoint: str, prefix: str, *, serializable: bool = False) -> dict[str, str]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    with grpc.insecure_channel(endpoint) as channel:
        response = rpc_pb2_grpc.KVStub(channel).Range(
            rpc_pb2.RangeRequest(
                key=prefix.encode(), range_end=end.encode(), serializable=serializable
            ),
            timeout=10,
        )
    return {kv.key.decode(): kv.value.decode() for kv in response.kvs}


def put_anywhere(cluster: StoreCluster, key: str, value: str) -> bool:
    """Try each live member once; True when one acknowledged the write."""
    for member in cluster.members:
        if not member.alive:
            continue
        try:
            put(member.endpoint, key, value, timeout=3)
            return True
        except grpc.RpcError:
            continue
    return False


def lease_call(endpoint: str, method: str, request: object) -> object:
    with grpc.insecure_channel(endpoint) as channel:
        return getattr(rpc_pb2_grpc.LeaseStub(channel), method)(request, timeout=10)


def keepalive_once(endpoint: str, lease_id: int) -> int:
    """One keep-alive through ``endpoint``; the TTL it answered (0: no such lease)."""
    with grpc.insecure_channel(endpoint) as channel:
        stub = rpc_pb2_grpc.LeaseStub(channel)
        responses = stub.LeaseKeepAlive(
            iter([rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)]), timeout=10
        )
        for response in responses:
            return int(response.TTL)
    raise AssertionError("no keep-alive response")
