"""Transaction conditions: ``compare_mod(key, "=", 7)`` and friends.

A transaction (:meth:`Client.txn`) runs its success branch when *every* compare holds,
else its failure branch, atomically at one revision. A compare looks at one field of a
key (or of every key in a range) against a constant:

=================  ===========================================  ===============================
function           field                                        a missing key has
=================  ===========================================  ===============================
``compare_mod``    ``mod_revision`` (revision of the last write) 0
``compare_create`` ``create_revision``                            0
``compare_version````version`` (writes since creation)           0
``compare_value``  ``value``                                      (compare is false)
``compare_lease``  ``lease`` ID                                   0
=================  ===========================================  ===============================

So Kubernetes' optimistic concurrency is ``compare_mod(key, "=", resource_version)`` for an
update and ``compare_mod(key, "=", 0)`` (:func:`key_absent`) for a create;
:meth:`Client.put_if` wraps both.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from proto.etcdserverpb import rpc_pb2
from raftstore.client.keys import Data, key_range, to_bytes

CompareOp = Literal["=", "!=", "<", ">"]

_RESULTS: dict[str, int] = {
    "=": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    "<": rpc_pb2.Compare.LESS,
    ">": rpc_pb2.Compare.GREATER,
}


class CompareTarget(enum.Enum):
    VERSION = "version"
    CREATE = "create_revision"
    MOD = "mod_revision"
    VALUE = "value"
    LEASE = "lease"


_TARGETS: dict[CompareTarget, int] = {
    CompareTarget.VERSION: rpc_pb2.Compare.VERSION,
    CompareTarget.CREATE: rpc_pb2.Compare.CREATE,
    CompareTarget.MOD: rpc_pb2.Compare.MOD,
    CompareTarget.VALUE: rpc_pb2.Compare.VALUE,
    CompareTarget.LEASE: rpc_pb2.Compare.LEASE,
}


@dataclass(frozen=True)
class Compare:
    """``<target of key> <op> <operand>``; with ``range_end``, of every key in the range."""

    key: bytes
    target: CompareTarget
    op: CompareOp
    operand: int | bytes
    range_end: bytes = b""

    def __post_init__(self) -> None:
        if self.op not in _RESULTS:
            raise ValueError(f"compare op must be one of {sorted(_RESULTS)}, not {self.op!r}")
        wants_bytes = self.target is CompareTarget.VALUE
        if wants_bytes != isinstance(self.operand, bytes) or isinstance(self.operand, bool):
            kind = "bytes" if wants_bytes else "int"
            raise TypeError(f"{self.target.value} compares with {kind}, not {self.operand!r}")

    def to_pb(self) -> rpc_pb2.Compare:
        pb = rpc_pb2.Compare(
            result=_RESULTS[self.op],  # type: ignore[arg-type]
            target=_TARGETS[self.target],  # type: ignore[arg-type]
            key=self.key,
            range_end=self.range_end,
        )
        setattr(pb, self.target.value, self.operand)
        return pb


def _compare(
    target: CompareTarget,
    key: Data,
    op: CompareOp,
    operand: int | bytes,
    prefix: bool,
    range_end: Data | None,
) -> Compare:
    start, end = key_range(key, prefix=prefix, range_end=range_end)
    return Compare(key=start, target=target, op=op, operand=operand, range_end=end)


def compare_mod(
    key: Data, op: CompareOp, revision: int, *, prefix: bool = False, range_end: Data | None = None
) -> Compare:
    """The key's ``mod_revision`` (0 when absent) ``op`` ``revision``."""
    return _compare(CompareTarget.MOD, key, op, revision, prefix, range_end)


def compare_create(
    key: Data, op: CompareOp, revision: int, *, prefix: bool = False, range_end: Data | None = None
) -> Compare:
    """The key's ``create_revision`` (0 when absent) ``op`` ``revision``."""
    return _compare(CompareTarget.CREATE, key, op, revision, prefix, range_end)


def compare_version(
    key: Data, op: CompareOp, version: int, *, prefix: bool = False, range_end: Data | None = None
) -> Compare:
    """The key's ``version`` (0 when absent) ``op`` ``version``."""
    return _compare(CompareTarget.VERSION, key, op, version, prefix, range_end)


def compare_value(
    key: Data, op: CompareOp, value: Data, *, prefix: bool = False, range_end: Data | None = None
) -> Compare:
    """The key's value ``op`` ``value`` (bytewise); false for a missing key."""
    return _compare(CompareTarget.VALUE, key, op, to_bytes(value), prefix, range_end)


def compare_lease(
    key: Data, op: CompareOp, lease: int, *, prefix: bool = False, range_end: Data | None = None
) -> Compare:
    """The key's lease ID (0 when none or absent) ``op`` ``lease``."""
    return _compare(CompareTarget.LEASE, key, op, lease, prefix, range_end)


def key_absent(key: Data) -> Compare:
    """The key does not exist (``mod_revision == 0``)."""
    return compare_mod(key, "=", 0)


def unchanged_since(key: Data, mod_revision: int) -> Compare:
    """The key was last written at ``mod_revision`` (0: it does not exist)."""
    return compare_mod(key, "=", mod_revision)
