"""Bad requests get etcd's status code and message, and change nothing."""

from __future__ import annotations

import grpc
import pytest

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.support.raftstore import StoreCluster


def call(store: StoreCluster, method: str, request: object, service: str = "KV") -> object:
    with grpc.insecure_channel(store.endpoints[0]) as channel:
        stub = getattr(rpc_pb2_grpc, f"{service}Stub")(channel)
        return getattr(stub, method)(request, timeout=10)


def revision(store: StoreCluster) -> int:
    response = call(
        store, "Range", rpc_pb2.RangeRequest(key=b"\0", range_end=b"\0", count_only=True)
    )
    return int(response.header.revision)  # type: ignore[attr-defined]


def put_op(key: bytes) -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=b"v"))


CASES = [
    ("Put", rpc_pb2.PutRequest(key=b"", value=b"v"), grpc.StatusCode.INVALID_ARGUMENT,
     "etcdserver: key is not provided"),
    ("Range", rpc_pb2.RangeRequest(key=b""), grpc.StatusCode.INVALID_ARGUMENT,
     "etcdserver: key is not provided"),
    ("Put", rpc_pb2.PutRequest(key=b"big", value=b"x" * (1536 * 1024 + 1)),
     grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large"),
    ("Put", rpc_pb2.PutRequest(key=b"leased", value=b"v", lease=424242),
     grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found"),
    ("Txn", rpc_pb2.TxnRequest(success=[put_op(f"k{i}".encode()) for i in range(129)]),
     grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
    ("Txn", rpc_pb2.TxnRequest(success=[put_op(b"dup"), put_op(b"dup")]),
     grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"),
    ("Range", rpc_pb2.RangeRequest(key=b"a", revision=10**12), grpc.StatusCode.OUT_OF_RANGE,
     "etcdserver: mvcc: required revision is a future revision"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "request_", "code", "message"), CASES)
def test_bad_request_is_refused_with_etcds_error(store1, method, request_, code, message):
    before = revision(store1)
    with pytest.raises(grpc.RpcError) as caught:
        call(store1, method, request_)
    assert caught.value.code() == code
    assert caught.value.details() == message
    assert revision(store1) == before


def test_revoking_an_unknown_lease(store1):
    with pytest.raises(grpc.RpcError) as caught:
        call(store1, "LeaseRevoke", rpc_pb2.LeaseRevokeRequest(ID=987654), service="Lease")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "etcdserver: requested lease not found"
