"""Request checks that need no store state (etcd does them in its gRPC layer, v3rpc/key.go).

They run inside :meth:`MvccStore.apply` too, so a command that bypassed the gRPC layer is
still rejected deterministically before anything changes. Checks that depend on state
(lease exists, key exists, revision in range) live with the store.

Txn rules, as etcd applies them:

* size: ``max(len(compare), len(success), len(failure))`` must not exceed the limit; a
  nested txn gets what its parent left (``limit - parent's size``), as in etcd >= 3.5.
* every compare and every op needs a key; an empty ``RequestOp`` is rejected with
  etcd's (odd, but client-visible) "key not found".
* no key may be written twice in one txn: within one branch list, puts may not repeat a key
  or fall into a deleted range, at any nesting depth; the success and failure branches of
  one nested txn may put the same key since only one of them runs. Deletes may overlap each
  other. Unlike etcd, a delete with ``range_end == b"\\0"`` counts as reaching every key
  after ``key`` (etcd's interval tree treats it as an empty interval, which lets a txn put
  and delete the same key at one revision; we refuse that).
"""

from __future__ import annotations

from collections.abc import Sequence

from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc import errors
from raftstore.mvcc.keyrange import in_range

__all__ = [
    "DEFAULT_MAX_TXN_OPS",
    "check_delete",
    "check_put",
    "check_range",
    "check_txn",
]

DEFAULT_MAX_TXN_OPS = 128

_SORT_ORDERS = frozenset(rpc_pb2.RangeRequest.SortOrder.values())
_SORT_TARGETS = frozenset(rpc_pb2.RangeRequest.SortTarget.values())


def check_range(request: rpc_pb2.RangeRequest) -> None:
    if not request.key:
        raise errors.EmptyKey()
    if request.sort_order not in _SORT_ORDERS or request.sort_target not in _SORT_TARGETS:
        raise errors.InvalidSortOption()


def check_put(request: rpc_pb2.PutRequest) -> None:
    if not request.key:
        raise errors.EmptyKey()
    if request.ignore_value and request.value:
        raise errors.ValueProvided()
    if request.ignore_lease and request.lease:
        raise errors.LeaseProvided()


def check_delete(request: rpc_pb2.DeleteRangeRequest) -> None:
    if not request.key:
        raise errors.EmptyKey()


def check_txn(request: rpc_pb2.TxnRequest, *, max_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
    """All stateless txn checks, in etcd's order: shape first, then duplicate keys."""
    _check_txn_shape(request, max_ops)
    _check_writes(request.success)
    _check_writes(request.failure)


def _check_txn_shape(request: rpc_pb2.TxnRequest, max_ops: int) -> None:
    size = max(len(request.compare), len(request.success), len(request.failure))
    if size > max_ops:
        raise errors.TooManyOps()
    for compare in request.compare:
        if not compare.key:
            raise errors.EmptyKey()
    for op in (*request.success, *request.failure):
        which = op.WhichOneof("request")
        if which == "request_range":
            check_range(op.request_range)
        elif which == "request_put":
            check_put(op.request_put)
        elif which == "request_delete_range":
            check_delete(op.request_delete_range)
        elif which == "request_txn":
            _check_txn_shape(op.request_txn, max_ops - size)
        else:
            raise errors.KeyNotFound()


class _Deletes:
    """The key intervals deleted by a branch (and its nested txns)."""

    __slots__ = ("ranges",)

    def __init__(self) -> None:
        self.ranges: list[tuple[bytes, bytes]] = []

    def covers(self, key: bytes) -> bool:
        return any(in_range(key, start, end) for start, end in self.ranges)


def _check_writes(ops: Sequence[rpc_pb2.RequestOp]) -> tuple[set[bytes], _Deletes]:
    """Puts and deletes of one branch list; raises DuplicateKey on a conflict."""
    deletes = _Deletes()
    for op in ops:
        if op.WhichOneof("request") == "request_delete_range":
            d = op.request_delete_range
            deletes.ranges.append((d.key, d.range_end))

    puts: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        puts_then, deletes_then = _check_writes(op.request_txn.success)
        puts_else, deletes_else = _check_writes(op.request_txn.failure)
        for key in puts_then:
            if key in puts or deletes.covers(key):
                raise errors.DuplicateKey()
            puts.add(key)
        for key in puts_else:
            if (key in puts and key not in puts_then) or deletes.covers(key):
                raise errors.DuplicateKey()
            puts.add(key)
        deletes.ranges.extend(deletes_then.ranges)
        deletes.ranges.extend(deletes_else.ranges)

    for op in ops:
        if op.WhichOneof("request") != "request_put":
            continue
        key = op.request_put.key
        if key in puts or deletes.covers(key):
            raise errors.DuplicateKey()
        puts.add(key)
    return puts, deletes
