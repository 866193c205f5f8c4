"""One stored version of a key: the unit of MVCC history.

Every write produces a :class:`Record` identified by its revision ``(main, sub)``: ``main``
is the store revision of the write transaction, ``sub`` orders the changes inside it. A
put's record holds the new value; a delete's record is a *tombstone* that only says "the key
stopped existing at this revision".

Records are immutable tuples (cheap to create, safe to share between the key index, the
history log and snapshots); they become protobuf ``KeyValue`` messages only at the edge,
in :meth:`Record.to_kv`.
"""

from __future__ import annotations

from typing import NamedTuple

from proto.mvccpb import kv_pb2

__all__ = ["Record", "revision_of"]


class Record(NamedTuple):
    key: bytes
    main: int
    """Main revision: the key's mod_revision when this is a put."""
    sub: int
    """Position of this change among the changes of its revision (0, 1, ...)."""
    tombstone: bool
    value: bytes = b""
    create_revision: int = 0
    version: int = 0
    lease: int = 0

    @property
    def revision(self) -> tuple[int, int]:
        return (self.main, self.sub)

    def to_kv(self, *, keys_only: bool = False) -> kv_pb2.KeyValue:
        """The etcd view of this record; a tombstone shows only key and mod_revision."""
        if self.tombstone:
            return kv_pb2.KeyValue(key=self.key, mod_revision=self.main)
        return kv_pb2.KeyValue(
            key=self.key,
            create_revision=self.create_revision,
            mod_revision=self.main,
            version=self.version,
            value=b"" if keys_only else self.value,
            lease=self.lease,
        )

    def to_event(self, prev: Record | None) -> kv_pb2.Event:
        """The watch event for this record, with ``prev`` as its prev_kv when given."""
        event = kv_pb2.Event(
            type=kv_pb2.Event.DELETE if self.tombstone else kv_pb2.Event.PUT,
            kv=self.to_kv(),
        )
        if prev is not None:
            event.prev_kv.CopyFrom(prev.to_kv())
        return event


def revision_of(record: Record) -> tuple[int, int]:
    """Sort/bisect key for records: their ``(main, sub)`` revision."""
    return (record.main, record.sub)
