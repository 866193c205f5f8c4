"""The replicated state of one store member: the MVCC store plus the member registry.

This is the state machine the Raft log drives. Two kinds of replicated command exist,
told apart by a one-byte tag in front of the payload:

=====  =========================================================================
tag    payload
=====  =========================================================================
``K``  an MVCC command (``raftstore.mvcc`` envelope: put, delete, txn, lease, ...)
``M``  a member's attributes (``etcdserverpb.Member``: id, name, peer and client URLs),
       published by every member when it starts, so any member can find the leader's
       client address (to forward lease keep-alives) and list the cluster's members
=====  =========================================================================

Threading: ``apply``, ``snapshot`` and ``restore`` run in the Raft thread; everything else
(reads from the gRPC services) runs in the trio thread. ``lock`` guards the MVCC store and
the registry; a reader holds it only for one synchronous read, never across an ``await``,
so a reader never sees half of a transaction and the writer waits at most one read.

Snapshot format (version 1): ``b"RSS1"``, then the length-prefixed (4 bytes, big endian)
serialized ``MemberListResponse`` holding the registry, then the MVCC store's own snapshot.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc import ApplyResult, MvccStore

TAG_MVCC = b"K"
TAG_MEMBER = b"M"
_SNAPSHOT_MAGIC = b"RSS1"


class CorruptSnapshot(Exception):
    """A snapshot that this code cannot read."""


class StoreState:
    """MVCC store + member registry; see the module docstring for the threading rules."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mvcc = MvccStore()
        # Lock order: only `lock`; members and mvcc are both guarded by it.
        self.members: dict[int, rpc_pb2.Member] = {}
        self.applied_index = 0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (in the Raft thread, must not block) after every apply/restore."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # -- the state machine (Raft thread) --------------------------------------------

    def apply(self, command: bytes, *, index: int) -> ApplyResult | None:
        tag, payload = command[:1], command[1:]
        with self.lock:
            self.applied_index = index
            if tag == TAG_MVCC:
                result: ApplyResult | None = self.mvcc.apply(payload, index=index)
            elif tag == TAG_MEMBER:
                member = rpc_pb2.Member.FromString(payload)
                self.members[member.ID] = member
                result = None
            else:
                raise ValueError(f"unknown store command tag {tag!r} at index {index}")
        self._changed()
        return result

    def snapshot(self) -> bytes:
        with self.lock:
            registry = rpc_pb2.MemberListResponse(members=list(self.members.values()))
            head = registry.SerializeToString()
            return _SNAPSHOT_MAGIC + struct.pack(">I", len(head)) + head + self.mvcc.snapshot()

    def restore(self, data: bytes) -> None:
        if data[:4] != _SNAPSHOT_MAGIC:
            raise CorruptSnapshot(f"not a store snapshot (magic {data[:4]!r})")
        (size,) = struct.unpack(">I", data[4:8])
        registry = rpc_pb2.MemberListResponse.FromString(data[8 : 8 + size])
        mvcc = MvccStore.restore(data[8 + size :])
        with self.lock:
            self.mvcc = mvcc
            self.members = {m.ID: m for m in registry.members}
        self._changed()


def mvcc_command(command: bytes) -> bytes:
    """Wrap an MVCC command for the log."""
    return TAG_MVCC + command


def member_command(member: rpc_pb2.Member) -> bytes:
    """Wrap a member's attributes for the log."""
    return TAG_MEMBER + member.SerializeToString()
