"""Shorthands for building etcd requests and driving an MvccStore in tests."""

from __future__ import annotations

from proto.etcdserverpb import rpc_pb2 as pb
from proto.mvccpb import kv_pb2
from raftstore.mvcc import ApplyResult, MvccError, MvccStore, make_command
from raftstore.mvcc.commands import Request

Compare = pb.Compare


class Driver:
    """An MvccStore plus a Raft-index counter; every write goes through apply()."""

    def __init__(self, store: MvccStore | None = None) -> None:
        self.store = store if store is not None else MvccStore()
        self.index = 0

    def apply(self, request: Request) -> ApplyResult:
        self.index += 1
        return self.store.apply(make_command(request), index=self.index)

    def ok(self, request: Request) -> ApplyResult:
        result = self.apply(request)
        assert result.error is None, result.error
        return result

    def fails(self, request: Request) -> MvccError:
        before = self.store.hash()
        result = self.apply(request)
        assert result.error is not None, f"expected a rejection, got {result.response}"
        assert result.response is None and result.events == ()
        assert self.store.hash() == before, "a rejected command changed the store"
        return result.error

    def put(self, key: bytes, value: bytes = b"", **kw: object) -> ApplyResult:
        return self.ok(pb.PutRequest(key=key, value=value, **kw))  # type: ignore[arg-type]

    def delete(self, key: bytes, range_end: bytes = b"", **kw: object) -> ApplyResult:
        return self.ok(pb.DeleteRangeRequest(key=key, range_end=range_end, **kw))  # type: ignore[arg-type]

    def get(self, key: bytes, range_end: bytes = b"", **kw: object) -> pb.RangeResponse:
        return self.store.range(pb.RangeRequest(key=key, range_end=range_end, **kw))  # type: ignore[arg-type]

    def values(self, key: bytes, range_end: bytes = b"", **kw: object) -> dict[bytes, bytes]:
        return {kv.key: kv.value for kv in self.get(key, range_end, **kw).kvs}

    def lease(self, ttl: int = 60, lease_id: int = 0) -> int:
        response = self.ok(pb.LeaseGrantRequest(TTL=ttl, ID=lease_id)).response
        assert isinstance(response, pb.LeaseGrantResponse)
        return response.ID


def put_op(key: bytes, value: bytes = b"", **kw: object) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, **kw))  # type: ignore[arg-type]


def delete_op(key: bytes, range_end: bytes = b"", **kw: object) -> pb.RequestOp:
    return pb.RequestOp(
        request_delete_range=pb.DeleteRangeRequest(key=key, range_end=range_end, **kw)  # type: ignore[arg-type]
    )


def range_op(key: bytes, range_end: bytes = b"", **kw: object) -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=key, range_end=range_end, **kw))  # type: ignore[arg-type]


def txn_op(txn: pb.TxnRequest) -> pb.RequestOp:
    return pb.RequestOp(request_txn=txn)


def cmp(
    key: bytes, target: str, result: str, operand: object, range_end: bytes = b""
) -> pb.Compare:
    """cmp(b"k", "VERSION", "EQUAL", 0) and the like."""
    field = {
        "VERSION": "version",
        "CREATE": "create_revision",
        "MOD": "mod_revision",
        "VALUE": "value",
        "LEASE": "lease",
    }[target]
    return pb.Compare(
        key=key,
        range_end=range_end,
        target=getattr(Compare, target),
        result=getattr(Compare, result),
        **{field: operand},  # type: ignore[arg-type]
    )


def kv_tuple(kv: kv_pb2.KeyValue) -> tuple[bytes, bytes, int, int, int, int]:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def event_summary(event: kv_pb2.Event) -> tuple[str, bytes, int, bytes]:
    kind = "PUT" if event.type == kv_pb2.Event.PUT else "DELETE"
    return (kind, event.kv.key, event.kv.mod_revision, event.kv.value)
