"""Operations: what :class:`Client` sends, as values that transactions can also carry.

``op_get``, ``op_put``, ``op_delete`` and ``op_txn`` build frozen dataclasses; the client's
``get``/``put``/``delete``/``txn`` build the same ones, so a read inside a transaction
takes exactly the arguments of :meth:`Client.get`. A transaction's branches may hold
further transactions (``op_txn``), evaluated at the same revision.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from proto.etcdserverpb import rpc_pb2
from raftstore.client.compare import Compare
from raftstore.client.keys import Data, key_range, to_bytes


class SortTarget(enum.Enum):
    KEY = rpc_pb2.RangeRequest.KEY
    VERSION = rpc_pb2.RangeRequest.VERSION
    CREATE = rpc_pb2.RangeRequest.CREATE
    MOD = rpc_pb2.RangeRequest.MOD
    VALUE = rpc_pb2.RangeRequest.VALUE


class SortOrder(enum.Enum):
    NONE = rpc_pb2.RangeRequest.NONE
    ASCEND = rpc_pb2.RangeRequest.ASCEND
    DESCEND = rpc_pb2.RangeRequest.DESCEND


@dataclass(frozen=True)
class Sort:
    """How a range is ordered; without one the store returns keys in ascending key order."""

    target: SortTarget = SortTarget.KEY
    order: SortOrder = SortOrder.ASCEND


@dataclass(frozen=True)
class GetOp:
    key: bytes
    range_end: bytes = b""
    revision: int = 0
    limit: int = 0
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    sort: Sort | None = None

    def to_pb(self) -> rpc_pb2.RangeRequest:
        sort = self.sort or Sort(order=SortOrder.NONE)
        return rpc_pb2.RangeRequest(
            key=self.key,
            range_end=self.range_end,
            revision=self.revision,
            limit=self.limit,
            serializable=self.serializable,
            keys_only=self.keys_only,
            count_only=self.count_only,
            sort_target=sort.target.value,
            sort_order=sort.order.value,
        )


@dataclass(frozen=True)
class PutOp:
    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False

    def to_pb(self) -> rpc_pb2.PutRequest:
        return rpc_pb2.PutRequest(
            key=self.key, value=self.value, lease=self.lease, prev_kv=self.prev_kv
        )


@dataclass(frozen=True)
class DeleteOp:
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False

    def to_pb(self) -> rpc_pb2.DeleteRangeRequest:
        return rpc_pb2.DeleteRangeRequest(
            key=self.key, range_end=self.range_end, prev_kv=self.prev_kv
        )


@dataclass(frozen=True)
class TxnOp:
    compare: tuple[Compare, ...] = ()
    success: tuple[Op, ...] = ()
    failure: tuple[Op, ...] = ()

    def to_pb(self) -> rpc_pb2.TxnRequest:
        return rpc_pb2.TxnRequest(
            compare=[c.to_pb() for c in self.compare],
            success=[request_op(op) for op in self.success],
            failure=[request_op(op) for op in self.failure],
        )


Op = GetOp | PutOp | DeleteOp | TxnOp


def request_op(op: Op) -> rpc_pb2.RequestOp:
    """``op`` as one operation of a transaction branch."""
    if isinstance(op, GetOp):
        return rpc_pb2.RequestOp(request_range=op.to_pb())
    if isinstance(op, PutOp):
        return rpc_pb2.RequestOp(request_put=op.to_pb())
    if isinstance(op, DeleteOp):
        return rpc_pb2.RequestOp(request_delete_range=op.to_pb())
    if isinstance(op, TxnOp):
        return rpc_pb2.RequestOp(request_txn=op.to_pb())
    raise TypeError(f"not a store operation: {op!r}")


def op_get(
    key: Data,
    *,
    prefix: bool = False,
    range_end: Data | None = None,
    revision: int = 0,
    limit: int = 0,
    serializable: bool = False,
    keys_only: bool = False,
    count_only: bool = False,
    sort: Sort | None = None,
) -> GetOp:
    start, end = key_range(key, prefix=prefix, range_end=range_end)
    return GetOp(
        key=start,
        range_end=end,
        revision=revision,
        limit=limit,
        serializable=serializable,
        keys_only=keys_only,
        count_only=count_only,
        sort=sort,
    )


def op_put(key: Data, value: Data, *, lease: int = 0, prev_kv: bool = False) -> PutOp:
    return PutOp(key=to_bytes(key), value=to_bytes(value), lease=lease, prev_kv=prev_kv)


def op_delete(
    key: Data, *, prefix: bool = False, range_end: Data | None = None, prev_kv: bool = False
) -> DeleteOp:
    start, end = key_range(key, prefix=prefix, range_end=range_end)
    return DeleteOp(key=start, range_end=end, prev_kv=prev_kv)


def op_txn(
    *,
    compare: Sequence[Compare] = (),
    success: Sequence[Op] = (),
    failure: Sequence[Op] = (),
) -> TxnOp:
    return TxnOp(compare=tuple(compare), success=tuple(success), failure=tuple(failure))
