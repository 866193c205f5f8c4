"""Results of store calls as frozen dataclasses, converted from etcd's protobuf messages.

Keys and values are ``bytes``. Revisions are the store's global, strictly increasing
write counter: ``header.revision`` is the store's revision when it answered,
``create_revision``/``mod_revision`` say when a key was created / last written, and
``version`` counts writes since creation (a delete resets the key: its next put has
version 1 and a new create_revision).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from proto.etcdserverpb import rpc_pb2
from proto.mvccpb import kv_pb2


@dataclass(frozen=True)
class Header:
    """Who answered, and at which revision."""

    cluster_id: int
    member_id: int
    revision: int
    raft_term: int

    @classmethod
    def from_pb(cls, pb: rpc_pb2.ResponseHeader) -> Header:
        return cls(
            cluster_id=pb.cluster_id,
            member_id=pb.member_id,
            revision=pb.revision,
            raft_term=pb.raft_term,
        )


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_pb(cls, pb: kv_pb2.KeyValue) -> KeyValue:
        return cls(
            key=pb.key,
            value=pb.value,
            create_revision=pb.create_revision,
            mod_revision=pb.mod_revision,
            version=pb.version,
            lease=pb.lease,
        )


def _optional_kv(pb: Any, name: str) -> KeyValue | None:
    return KeyValue.from_pb(getattr(pb, name)) if pb.HasField(name) else None


@dataclass(frozen=True)
class RangeResult:
    header: Header
    kvs: tuple[KeyValue, ...]
    more: bool  # the limit cut the result short
    count: int  # keys in the range, regardless of limit

    @property
    def revision(self) -> int:
        return self.header.revision

    @property
    def kv(self) -> KeyValue | None:
        """The first key-value, or None when the range is empty (handy for one key)."""
        return self.kvs[0] if self.kvs else None

    @classmethod
    def from_pb(cls, pb: rpc_pb2.RangeResponse) -> RangeResult:
        return cls(
            header=Header.from_pb(pb.header),
            kvs=tuple(KeyValue.from_pb(kv) for kv in pb.kvs),
            more=pb.more,
            count=pb.count,
        )


@dataclass(frozen=True)
class PutResult:
    header: Header
    prev_kv: KeyValue | None  # only when asked for with prev_kv=True and the key existed

    @property
    def revision(self) -> int:
        """The revision of this put (the key's new mod_revision)."""
        return self.header.revision

    @classmethod
    def from_pb(cls, pb: rpc_pb2.PutResponse) -> PutResult:
        return cls(header=Header.from_pb(pb.header), prev_kv=_optional_kv(pb, "prev_kv"))


@dataclass(frozen=True)
class DeleteResult:
    header: Header
    deleted: int
    prev_kvs: tuple[KeyValue, ...]  # only when asked for with prev_kv=True

    @property
    def revision(self) -> int:
        return self.header.revision

    @classmethod
    def from_pb(cls, pb: rpc_pb2.DeleteRangeResponse) -> DeleteResult:
        return cls(
            header=Header.from_pb(pb.header),
            deleted=pb.deleted,
            prev_kvs=tuple(KeyValue.from_pb(kv) for kv in pb.prev_kvs),
        )


@dataclass(frozen=True)
class TxnResult:
    header: Header
    succeeded: bool  # every compare held, so the success branch ran
    responses: tuple[OpResult, ...]  # one per operation of the branch that ran

    @property
    def revision(self) -> int:
        return self.header.revision

    @classmethod
    def from_pb(cls, pb: rpc_pb2.TxnResponse) -> TxnResult:
        return cls(
            header=Header.from_pb(pb.header),
            succeeded=pb.succeeded,
            responses=tuple(_op_result(op) for op in pb.responses),
        )


OpResult = RangeResult | PutResult | DeleteResult | TxnResult


def _op_result(pb: rpc_pb2.ResponseOp) -> OpResult:
    which = pb.WhichOneof("response")
    if which == "response_range":
        return RangeResult.from_pb(pb.response_range)
    if which == "response_put":
        return PutResult.from_pb(pb.response_put)
    if which == "response_delete_range":
        return DeleteResult.from_pb(pb.response_delete_range)
    if which == "response_txn":
        return TxnResult.from_pb(pb.response_txn)
    raise ValueError(f"transaction response without an operation: {pb!r}")


@dataclass(frozen=True)
class CasResult:
    """The outcome of a compare-and-swap (:meth:`Client.put_if`, :meth:`Client.delete_if`)."""

    succeeded: bool
    revision: int  # the store's revision after the transaction
    current: KeyValue | None  # on failure: the key as it is now (None when absent)


@dataclass(frozen=True)
class Lease:
    id: int
    ttl: int  # seconds granted (the store may round a small TTL up)


@dataclass(frozen=True)
class LeaseInfo:
    id: int
    ttl: int  # seconds left; -1 when the lease does not exist (expired or revoked)
    granted_ttl: int
    keys: tuple[bytes, ...]  # attached keys, when asked for with keys=True


@dataclass(frozen=True)
class Status:
    header: Header
    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    errors: tuple[str, ...]
    db_size_in_use: int
    is_learner: bool

    @classmethod
    def from_pb(cls, pb: rpc_pb2.StatusResponse) -> Status:
        return cls(
            header=Header.from_pb(pb.header),
            version=pb.version,
            db_size=pb.dbSize,
            leader=pb.leader,
            raft_index=pb.raftIndex,
            raft_term=pb.raftTerm,
            raft_applied_index=pb.raftAppliedIndex,
            errors=tuple(pb.errors),
            db_size_in_use=pb.dbSizeInUse,
            is_learner=pb.isLearner,
        )


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @classmethod
    def from_pb(cls, pb: rpc_pb2.Member) -> Member:
        return cls(
            id=pb.ID,
            name=pb.name,
            peer_urls=tuple(pb.peerURLs),
            client_urls=tuple(pb.clientURLs),
            is_learner=pb.isLearner,
        )


class EventType(enum.Enum):
    PUT = kv_pb2.Event.PUT
    DELETE = kv_pb2.Event.DELETE


@dataclass(frozen=True)
class Event:
    """One change. For DELETE, ``kv`` has the key and the delete's ``mod_revision``."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None  # when the watch asked for prev_kv and the key existed

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @classmethod
    def from_pb(cls, pb: kv_pb2.Event) -> Event:
        return cls(
            type=EventType(pb.type),
            kv=KeyValue.from_pb(pb.kv),
            prev_kv=_optional_kv(pb, "prev_kv"),
        )


@dataclass(frozen=True)
class WatchBatch:
    """Events delivered together, in revision order; all events of one revision are in one
    batch. An empty batch is a progress notification: the store had nothing newer than
    ``header.revision`` for this watch."""

    header: Header
    events: tuple[Event, ...]

    @property
    def revision(self) -> int:
        return self.header.revision
