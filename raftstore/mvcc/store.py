"""MvccStore: etcd's v3 MVCC key-value semantics as a pure, deterministic state machine.

The replication layer feeds :meth:`MvccStore.apply` the committed Raft log, in order, one
command at a time; every replica that applies the same commands ends in the same state
(:meth:`MvccStore.hash` proves it). There are no threads, clocks, I/O or randomness here,
so the whole of etcd's semantics can be tested without Raft.

Model (etcd's):

* One store-wide *revision*, 1 for an empty store. Each write transaction -- a put, a
  delete that deletes something, a txn with at least one effective write, a lease revoke
  that deletes keys -- bumps it by exactly one; its changes share that main revision and are
  ordered by sub-revision. A command that changes nothing leaves the revision alone.
* Each key has ``create_revision``, ``mod_revision`` and ``version`` (1 on create, +1 per
  put, back to 0 when deleted). History lives in per-key generations
  (:mod:`.key_index`) and in a revision-ordered log that serves watch catch-up.
* Compaction forgets history older than the compact revision; reading or watching below it
  is an explicit :class:`~raftstore.mvcc.errors.CompactedError`, never a silent gap.

Guarantees:

* A rejected command (:class:`ApplyResult` with ``error``) changed nothing: every check,
  including state-dependent ones, runs before the first mutation.
* ``apply`` raises only for a command whose envelope does not decode
  (:class:`~raftstore.mvcc.errors.CommandDecodeError`); that is a broken invariant and the
  caller must stop rather than skip the entry.
* Events are produced in revision order, with ``prev_kv`` always filled when the key existed
  before, so each watcher can keep or drop it.

Not thread-safe: the owner (the replication layer's apply thread) must serialise calls, or
hold a lock around reads made from other threads.

Where we differ from etcd, on purpose:

* ``compact(r)`` also keeps the version each key had just before any change made *at*
  revision ``r``, so that a watch from ``start_revision == r`` -- which etcd allows (it only
  refuses ``start < compact``) -- gets every event of revision ``r`` with its ``prev_kv``.
  etcd drops tombstones at ``r`` there. Reads below ``r`` are still refused.
* ``compact(0)`` on a never-compacted store is refused as already compacted (etcd's
  initial compact revision is -1, ours is 0).
* Lease ID 0 makes the store pick a deterministic ID (see :mod:`.leases`).
* Nested TxnResponses carry the txn's header revision (etcd leaves them zero).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter
from typing import Any, TypeAlias

from proto.etcdserverpb import rpc_pb2
from proto.mvccpb import kv_pb2
from raftstore.mvcc import errors
from raftstore.mvcc.commands import CommandKind, decode_command
from raftstore.mvcc.compare import compare_holds
from raftstore.mvcc.index import Index
from raftstore.mvcc.keyrange import in_range
from raftstore.mvcc.leases import DEFAULT_MIN_LEASE_TTL, LeaseTable
from raftstore.mvcc.range_query import build_range_response
from raftstore.mvcc.record import Record
from raftstore.mvcc.snapshot import decode_snapshot, encode_snapshot
from raftstore.mvcc.validation import (
    DEFAULT_MAX_TXN_OPS,
    check_delete,
    check_put,
    check_range,
    check_txn,
)

__all__ = ["ApplyResult", "MvccStore", "Response"]

Response: TypeAlias = (
    rpc_pb2.PutResponse
    | rpc_pb2.DeleteRangeResponse
    | rpc_pb2.TxnResponse
    | rpc_pb2.CompactionResponse
    | rpc_pb2.LeaseGrantResponse
    | rpc_pb2.LeaseRevokeResponse
)

_main = attrgetter("main")


@dataclass(frozen=True)
class ApplyResult:
    """What applying one command did.

    ``response``: the etcd response, ``header.revision`` set (other header fields are the
    caller's); None for a NOOP or a rejected command. ``events``: the changes, in order,
    ``prev_kv`` filled whenever the key existed before. ``error``: the deterministic
    rejection, in which case nothing changed.
    """

    response: Response | None
    events: tuple[kv_pb2.Event, ...] = ()
    error: errors.MvccError | None = None


class _Write:
    """One write transaction in progress: every change gets ``main`` and the next sub."""

    __slots__ = ("events", "main", "sub")

    def __init__(self, revision: int) -> None:
        self.main = revision + 1
        self.sub = 0
        self.events: list[kv_pb2.Event] = []

    def next_sub(self) -> int:
        sub = self.sub
        self.sub += 1
        return sub


@dataclass(frozen=True)
class _TxnPlan:
    """A txn with every compare already decided: the branch it takes, recursively."""

    succeeded: bool
    ops: Sequence[rpc_pb2.RequestOp]
    nested: list[_TxnPlan | None]  # parallel to ops: the plan of each nested txn op


_Applied: TypeAlias = tuple[Response, list[kv_pb2.Event]]


class MvccStore:
    """etcd's MVCC store; see the module docstring for the model and the guarantees.

    Configuration must be identical on every replica: ``max_txn_ops`` (etcd's
    ``--max-txn-ops``, default 128) and ``min_lease_ttl`` (seconds; etcd derives 2 from its
    default election timeout).
    """

    def __init__(
        self,
        *,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        min_lease_ttl: int = DEFAULT_MIN_LEASE_TTL,
    ) -> None:
        # Invariants: _log holds every record any KeyIndex holds (plus nothing else), in
        # revision order; all records have main <= _revision; compaction removed every
        # record older than what reads at >= _compact_revision need.
        self._index = Index()
        self._log: list[Record] = []
        self._revision = 1
        self._compact_revision = 0
        self._applied_index = 0
        self._leases = LeaseTable(min_ttl=min_lease_ttl)
        self._max_txn_ops = max_txn_ops
        self._appliers: dict[CommandKind, Callable[[Any], _Applied]] = {
            CommandKind.PUT: self._apply_put,
            CommandKind.DELETE_RANGE: self._apply_delete_range,
            CommandKind.TXN: self._apply_txn,
            CommandKind.COMPACT: self._apply_compact,
            CommandKind.LEASE_GRANT: self._apply_lease_grant,
            CommandKind.LEASE_REVOKE: self._apply_lease_revoke,
        }

    # ================================================================== public API

    @property
    def revision(self) -> int:
        """The current store revision (1 when nothing was ever written)."""
        return self._revision

    @property
    def compact_revision(self) -> int:
        """The last compaction's revision; 0 if the store was never compacted."""
        return self._compact_revision

    @property
    def applied_index(self) -> int:
        """The Raft index of the last command applied (0 before any)."""
        return self._applied_index

    def apply(self, command: bytes, *, index: int) -> ApplyResult:
        """Apply one committed command, in log order. Deterministic; never raises for a
        request etcd would reject (see :class:`ApplyResult`), only for undecodable bytes."""
        decoded = decode_command(command)
        self._applied_index = index
        if decoded.kind is CommandKind.NOOP:
            return ApplyResult(None)
        try:
            response, events = self._appliers[decoded.kind](decoded.request)
        except errors.MvccError as exc:
            return ApplyResult(None, (), exc)
        return ApplyResult(response, tuple(events))

    def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        """Read-only Range. Raises MvccError (EmptyKey, InvalidSortOption, CompactedError,
        FutureRevisionError) where etcd would fail the RPC. Sets only header.revision."""
        check_range(request)
        return self._range(request, current=self._revision)

    def events_since(
        self, start_revision: int, key: bytes, range_end: bytes, *, prev_kv: bool
    ) -> list[kv_pb2.Event]:
        """Every event at revision >= ``start_revision`` on ``(key, range_end)``, in order.

        Raises CompactedError when ``start_revision < compact_revision`` (etcd's rule: a
        watch may start *at* the compact revision). ``start_revision <= 0`` means 1. A start
        beyond the current revision simply yields nothing yet.
        """
        start = max(start_revision, 1)
        if start < self._compact_revision:
            raise errors.CompactedError(self._compact_revision)
        first = bisect_left(self._log, start, key=_main)
        events = []
        for record in islice(self._log, first, None):
            if not in_range(record.key, key, range_end):
                continue
            prev = None
            if prev_kv:
                key_index = self._index.get(record.key)
                assert key_index is not None
                prev = key_index.previous(record)
            events.append(record.to_event(prev))
        return events

    def lease_ttl(self, lease_id: int) -> int | None:
        """The TTL the lease was granted with, or None if there is no such lease."""
        lease = self._leases.get(lease_id)
        return None if lease is None else lease.ttl

    def lease_keys(self, lease_id: int) -> list[bytes]:
        """Keys attached to the lease, sorted; empty for an unknown lease."""
        lease = self._leases.get(lease_id)
        return [] if lease is None else sorted(lease.keys)

    def leases(self) -> list[int]:
        """IDs of every lease, sorted."""
        return self._leases.ids()

    def snapshot(self) -> bytes:
        """The whole state in our versioned format (:mod:`.snapshot`)."""
        return self._encode(applied_index=self._applied_index)

    @classmethod
    def restore(
        cls,
        data: bytes,
        *,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
        min_lease_ttl: int = DEFAULT_MIN_LEASE_TTL,
    ) -> MvccStore:
        """A store identical to the one that produced ``data`` with :meth:`snapshot`.
        Raises SnapshotFormatError for data that is corrupt or inconsistent."""
        state = decode_snapshot(data)
        if not (1 <= state.revision and 0 <= state.compact_revision <= state.revision):
            raise errors.SnapshotFormatError(
                f"bad revisions in snapshot: revision {state.revision}, "
                f"compact revision {state.compact_revision}"
            )
        store = cls(max_txn_ops=max_txn_ops, min_lease_ttl=min_lease_ttl)
        store._revision = state.revision
        store._compact_revision = state.compact_revision
        store._applied_index = state.applied_index
        store._leases.next_id = state.next_lease_id
        for lease_id, ttl in state.leases:
            store._leases.add(lease_id, ttl)
        for record in state.records:
            key_index = store._index.get_or_create(record.key)
            if record.tombstone:
                if key_index.latest() is None:
                    raise errors.SnapshotFormatError(
                        f"tombstone at {record.main}.{record.sub} for absent key {record.key!r}"
                    )
                key_index.tombstone(record)
            else:
                key_index.put(record)
            store._log.append(record)
        for key_index in store._index:
            latest = key_index.latest()
            if latest is not None and latest.lease:
                if latest.lease not in store._leases:
                    raise errors.SnapshotFormatError(
                        f"key {latest.key!r} is attached to unknown lease {latest.lease}"
                    )
                store._leases.attach(latest.lease, latest.key)
        return store

    def hash(self) -> int:
        """crc32 of the full logical state (history, revisions, leases, ID counter), not
        of the applied index: replicas that applied the same commands hash equal."""
        return zlib.crc32(self._encode(applied_index=0))

    # ================================================================== reads

    def _live(self, key: bytes, range_end: bytes, at: int | None = None) -> list[Record]:
        """Records of the keys in range that exist at revision ``at`` (None: now, including
        the changes of a write in progress)."""
        if at is None:
            found = (key_index.latest() for key_index in self._index.range(key, range_end))
        else:
            found = (key_index.get(at) for key_index in self._index.range(key, range_end))
        return [record for record in found if record is not None]

    def _range(self, request: rpc_pb2.RangeRequest, *, current: int) -> rpc_pb2.RangeResponse:
        at = request.revision if request.revision > 0 else current
        if at > current:
            raise errors.FutureRevisionError()
        if at < self._compact_revision:
            raise errors.CompactedError(self._compact_revision)
        records = self._live(request.key, request.range_end, None if at == current else at)
        return build_range_response(request, records, header_revision=current)

    # ================================================================== writes

    def _commit(self, write: _Write) -> None:
        if write.events:
            self._revision = write.main

    def _view(self, write: _Write) -> int:
        """The revision a read inside ``write`` sees (its own changes included)."""
        return write.main if write.events else self._revision

    def _put(self, write: _Write, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        key = request.key
        key_index = self._index.get_or_create(key)
        current = key_index.latest()
        value, lease = request.value, request.lease
        if request.ignore_value or request.ignore_lease:
            assert current is not None, "validated before writing"
            if request.ignore_value:
                value = current.value
            if request.ignore_lease:
                lease = current.lease
        record = Record(
            key,
            write.main,
            write.next_sub(),
            False,
            value,
            current.create_revision if current else write.main,
            current.version + 1 if current else 1,
            lease,
        )
        key_index.put(record)
        self._log.append(record)
        if current is not None and current.lease != lease:
            self._leases.detach(current.lease, key)
        self._leases.attach(lease, key)
        write.events.append(record.to_event(current))

        response = rpc_pb2.PutResponse()
        response.header.revision = write.main
        if request.prev_kv and current is not None:
            response.prev_kv.CopyFrom(current.to_kv())
        return response

    def _delete(self, write: _Write, current: Record) -> None:
        tombstone = Record(current.key, write.main, write.next_sub(), True)
        key_index = self._index.get(current.key)
        assert key_index is not None
        key_index.tombstone(tombstone)
        self._log.append(tombstone)
        self._leases.detach(current.lease, current.key)
        write.events.append(tombstone.to_event(current))

    def _delete_range(
        self, write: _Write, request: rpc_pb2.DeleteRangeRequest
    ) -> rpc_pb2.DeleteRangeResponse:
        targets = self._live(request.key, request.range_end)
        response = rpc_pb2.DeleteRangeResponse(deleted=len(targets))
        if request.prev_kv:
            response.prev_kvs.extend(record.to_kv() for record in targets)
        for record in targets:
            self._delete(write, record)
        response.header.revision = self._view(write)
        return response

    # ================================================================== commands

    def _check_put_state(self, request: rpc_pb2.PutRequest) -> None:
        if request.ignore_value or request.ignore_lease:
            key_index = self._index.get(request.key)
            if key_index is None or key_index.latest() is None:
                raise errors.KeyNotFound()
        if request.lease and request.lease not in self._leases:
            raise errors.LeaseNotFound()

    def _apply_put(self, request: rpc_pb2.PutRequest) -> _Applied:
        check_put(request)
        if request.lease and request.lease not in self._leases:
            raise errors.LeaseNotFound()
        self._check_put_state(request)
        write = _Write(self._revision)
        response = self._put(write, request)
        self._commit(write)
        return response, write.events

    def _apply_delete_range(self, request: rpc_pb2.DeleteRangeRequest) -> _Applied:
        check_delete(request)
        write = _Write(self._revision)
        response = self._delete_range(write, request)
        self._commit(write)
        return response, write.events

    def _apply_txn(self, request: rpc_pb2.TxnRequest) -> _Applied:
        check_txn(request, max_ops=self._max_txn_ops)
        plan = self._plan(request)
        # etcd's order: every put on the chosen path, then every range on it.
        self._check_plan(plan, self._check_put_op)
        self._check_plan(plan, self._check_range_op)
        write = _Write(self._revision)
        response = self._run(write, plan)
        self._commit(write)
        _stamp_headers(response, self._revision)
        return response, write.events

    def _plan(self, request: rpc_pb2.TxnRequest) -> _TxnPlan:
        succeeded = all(
            compare_holds(compare, self._live(compare.key, compare.range_end))
            for compare in request.compare
        )
        ops = request.success if succeeded else request.failure
        nested = [
            self._plan(op.request_txn) if op.WhichOneof("request") == "request_txn" else None
            for op in ops
        ]
        return _TxnPlan(succeeded, ops, nested)

    def _check_plan(self, plan: _TxnPlan, check: Callable[[rpc_pb2.RequestOp], None]) -> None:
        for op, nested in zip(plan.ops, plan.nested, strict=True):
            if nested is not None:
                self._check_plan(nested, check)
            else:
                check(op)

    def _check_put_op(self, op: rpc_pb2.RequestOp) -> None:
        if op.WhichOneof("request") == "request_put":
            self._check_put_state(op.request_put)

    def _check_range_op(self, op: rpc_pb2.RequestOp) -> None:
        if op.WhichOneof("request") != "request_range":
            return
        revision = op.request_range.revision
        if revision > self._revision:
            raise errors.FutureRevisionError()
        if 0 < revision < self._compact_revision:
            raise errors.CompactedError(self._compact_revision)

    def _run(self, write: _Write, plan: _TxnPlan) -> rpc_pb2.TxnResponse:
        response = rpc_pb2.TxnResponse(succeeded=plan.succeeded)
        for op, nested in zip(plan.ops, plan.nested, strict=True):
            out = response.responses.add()
            which = op.WhichOneof("request")
            if which == "request_range":
                out.response_range.CopyFrom(
                    self._range(op.request_range, current=self._view(write))
                )
            elif which == "request_put":
                out.response_put.CopyFrom(self._put(write, op.request_put))
            elif which == "request_delete_range":
                out.response_delete_range.CopyFrom(
                    self._delete_range(write, op.request_delete_range)
                )
            elif nested is not None:
                out.response_txn.CopyFrom(self._run(write, nested))
        return response

    def _apply_compact(self, request: rpc_pb2.CompactionRequest) -> _Applied:
        revision = request.revision
        if revision <= self._compact_revision:
            raise errors.CompactedError(self._compact_revision)
        if revision > self._revision:
            raise errors.FutureRevisionError()
        self._compact(revision)
        response = rpc_pb2.CompactionResponse()
        response.header.revision = self._revision
        return response, []

    def _compact(self, revision: int) -> None:
        # Keep what reads at `revision` need *and* the predecessors of changes made at
        # `revision` (for complete watch events from it): that is etcd's rule at revision-1.
        purge_at = revision - 1
        dropped: set[tuple[int, int]] = set()
        emptied = []
        for key_index in self._index:
            dropped.update(record.revision for record in key_index.compact(purge_at))
            if key_index.is_empty():
                emptied.append(key_index.key)
        self._index.remove_all(emptied)
        if dropped:
            cut = bisect_left(self._log, revision, key=_main)
            head = [record for record in self._log[:cut] if record.revision not in dropped]
            self._log[:cut] = head
        self._compact_revision = revision

    def _apply_lease_grant(self, request: rpc_pb2.LeaseGrantRequest) -> _Applied:
        lease = self._leases.grant(request.ID, request.TTL)
        response = rpc_pb2.LeaseGrantResponse(ID=lease.id, TTL=lease.ttl)
        response.header.revision = self._revision
        return response, []

    def _apply_lease_revoke(self, request: rpc_pb2.LeaseRevokeRequest) -> _Applied:
        lease = self._leases.get(request.ID)
        if lease is None:
            raise errors.LeaseNotFound()
        write = _Write(self._revision)
        for key in sorted(lease.keys):
            key_index = self._index.get(key)
            current = key_index.latest() if key_index is not None else None
            assert current is not None and current.lease == lease.id, key
            self._delete(write, current)
        self._leases.remove(lease.id)
        self._commit(write)
        response = rpc_pb2.LeaseRevokeResponse()
        response.header.revision = self._revision
        return response, write.events

    # ================================================================== encoding

    def _encode(self, *, applied_index: int) -> bytes:
        return encode_snapshot(
            revision=self._revision,
            compact_revision=self._compact_revision,
            applied_index=applied_index,
            next_lease_id=self._leases.next_id,
            records=self._log,
            leases=[(i, self._leases.get(i).ttl) for i in self._leases.ids()],  # type: ignore[union-attr]
        )


def _stamp_headers(response: rpc_pb2.TxnResponse, revision: int) -> None:
    """Set the header revision of a txn response and of every nested txn response."""
    response.header.revision = revision
    for op in response.responses:
        if op.WhichOneof("response") == "response_txn":
            _stamp_headers(op.response_txn, revision)
