"""Txn compares, with etcd's exact rules (server/etcdserver/txn: applyCompare, compareKV).

* A compare reads ``(key, range_end)`` at the revision the txn starts from. Every compare
  of a txn -- including those of nested txns -- is evaluated against that state, before any
  of the txn's writes: etcd decides the whole branch path up front.
* With a range, *every* key in it must satisfy the compare.
* No key (or an empty range): a VALUE compare is false (there is no value to compare,
  and "missing" cannot be told apart from "empty"); any other target compares a zero
  KeyValue, so ``version == 0``, ``create_revision == 0``, ``mod_revision == 0`` and
  ``lease == 0`` hold for a missing key.
* The operand is taken from the oneof only when it matches the target; otherwise it is
  zero (or ``b""`` for VALUE), as in etcd.
* Values compare as bytes (lexicographically), numbers as integers.
"""

from __future__ import annotations

from collections.abc import Sequence

from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc.record import Record

__all__ = ["compare_holds"]

_Compare = rpc_pb2.Compare
_ZERO = Record(b"", 0, 0, False)

# target -> (oneof field of the operand, attribute of the record)
_TARGETS: dict[int, tuple[str, str]] = {
    _Compare.VERSION: ("version", "version"),
    _Compare.CREATE: ("create_revision", "create_revision"),
    _Compare.MOD: ("mod_revision", "main"),
    _Compare.LEASE: ("lease", "lease"),
    _Compare.VALUE: ("value", "value"),
}


def compare_holds(compare: rpc_pb2.Compare, records: Sequence[Record]) -> bool:
    """Whether ``compare`` holds for ``records``, the live records in its key range."""
    if not records:
        if compare.target == _Compare.VALUE:
            return False
        records = (_ZERO,)
    target = _TARGETS.get(compare.target)
    for record in records:
        if target is None:
            outcome = 0
        else:
            field, attribute = target
            ours = getattr(record, attribute)
            theirs = (
                getattr(compare, field)
                if compare.WhichOneof("target_union") == field
                else type(ours)()
            )
            outcome = (ours > theirs) - (ours < theirs)
        if not _result_holds(compare.result, outcome):
            return False
    return True


def _result_holds(result: int, outcome: int) -> bool:
    if result == _Compare.EQUAL:
        return outcome == 0
    if result == _Compare.NOT_EQUAL:
        return outcome != 0
    if result == _Compare.GREATER:
        return outcome > 0
    if result == _Compare.LESS:
        return outcome < 0
    return True  # an unknown result never fails, as in etcd
