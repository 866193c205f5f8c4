"""The store client: ``async with open_client(endpoints) as client``.

One client serves a whole process: it holds a gRPC channel per endpoint and sends each
call to the current one, failing over as :mod:`raftstore.client.transport` describes
(reads retry on the next endpoint; writes only when provably unsent, else
:class:`~raftstore.client.errors.Indeterminate`). It works the same against raftstore and
a real etcd: it uses only etcd's v3 API and etcd's error messages.

Consistency: reads are linearizable unless ``serializable=True`` (then the answering
member's local, possibly stale, state; cheaper and available without a leader). Every
result carries the store revision it was taken at. Writes are applied in one global
order; each gets a revision one higher than the write before it.

The client owns no background tasks itself. A watch (:meth:`Client.watch`) and a lease
keep-alive (:meth:`Client.keepalive`, :meth:`Client.lease`) are context managers that own
their stream and, for keep-alives, their task; leaving the block ends them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from proto import rpc
from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftstore.client import lease as _lease
from raftstore.client import watch as _watch
from raftstore.client.compare import Compare, unchanged_since
from raftstore.client.keys import Data
from raftstore.client.ops import Op, Sort, TxnOp, op_delete, op_get, op_put, op_txn
from raftstore.client.results import (
    CasResult,
    DeleteResult,
    Lease,
    LeaseInfo,
    Member,
    PutResult,
    RangeResult,
    Status,
    TxnResult,
)
from raftstore.client.transport import RETRY_WINDOW, Transport, open_transport, parse_endpoint
from raftstore.client.watch import WatchFilter


class Client:
    """Calls to the store. Make one with :func:`open_client`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._transport.endpoints

    @property
    def current_endpoint(self) -> str:
        """The endpoint calls go to now."""
        return self._transport.endpoints[self._transport.current]

    # ------------------------------------------------------------------ KV

    async def get(
        self,
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
    ) -> RangeResult:
        """The key, or the keys in a range, at ``revision`` (0: the latest).

        ``limit`` caps the keys returned (``more`` says whether there were others,
        ``count`` how many the range holds). Reading a compacted revision raises
        :class:`~raftstore.client.errors.Compacted`, a future one
        :class:`~raftstore.client.errors.FutureRevision`. Retried on other endpoints.
        """
        op = op_get(
            key,
            prefix=prefix,
            range_end=range_end,
            revision=revision,
            limit=limit,
            serializable=serializable,
            keys_only=keys_only,
            count_only=count_only,
            sort=sort,
        )
        response = await self._transport.unary(
            rpc_pb2_grpc.KVStub, "Range", op.to_pb(), idempotent=True
        )
        return RangeResult.from_pb(response)

    async def put(
        self, key: Data, value: Data, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResult:
        """Write ``value`` at ``key`` (attached to ``lease`` when not 0). A write: not retried
        once it may have reached a server."""
        op = op_put(key, value, lease=lease, prev_kv=prev_kv)
        response = await self._transport.unary(
            rpc_pb2_grpc.KVStub, "Put", op.to_pb(), idempotent=False
        )
        return PutResult.from_pb(response)

    async def delete(
        self,
        key: Data,
        *,
        prefix: bool = False,
        range_end: Data | None = None,
        prev_kv: bool = False,
    ) -> DeleteResult:
        """Delete the key, or the keys in a range. A write."""
        op = op_delete(key, prefix=prefix, range_end=range_end, prev_kv=prev_kv)
        response = await self._transport.unary(
            rpc_pb2_grpc.KVStub, "DeleteRange", op.to_pb(), idempotent=False
        )
        return DeleteResult.from_pb(response)

    async def txn(
        self,
        *,
        compare: Sequence[Compare] = (),
        success: Sequence[Op] = (),
        failure: Sequence[Op] = (),
    ) -> TxnResult:
        """If every compare holds, run ``success``, else ``failure``; atomically.

        Build compares with :mod:`raftstore.client.compare` and operations with
        :mod:`raftstore.client.ops`. A write, even when every operation reads.
        """
        return await self._txn(op_txn(compare=compare, success=success, failure=failure))

    async def _txn(self, op: TxnOp) -> TxnResult:
        response = await self._transport.unary(
            rpc_pb2_grpc.KVStub, "Txn", op.to_pb(), idempotent=False
        )
        return TxnResult.from_pb(response)

    async def put_if(
        self, key: Data, value: Data, *, mod_revision: int, lease: int = 0
    ) -> CasResult:
        """Put only if the key was last written at ``mod_revision`` (0: only if absent).

        Kubernetes' optimistic concurrency: ``mod_revision`` is the object's
        resourceVersion. On failure ``current`` is the key as it is now, read in the same
        transaction, so the caller can retry against it without another round trip.
        """
        result = await self._txn(
            op_txn(
                compare=[unchanged_since(key, mod_revision)],
                success=[op_put(key, value, lease=lease)],
                failure=[op_get(key)],
            )
        )
        return _cas_result(result)

    async def delete_if(self, key: Data, *, mod_revision: int) -> CasResult:
        """Delete only if the key was last written at ``mod_revision``."""
        result = await self._txn(
            op_txn(
                compare=[unchanged_since(key, mod_revision)],
                success=[op_delete(key)],
                failure=[op_get(key)],
            )
        )
        return _cas_result(result)

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        """Forget history before ``revision``; with ``physical``, wait until it is purged."""
        request = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        await self._transport.unary(rpc_pb2_grpc.KVStub, "Compact", request, idempotent=False)

    # ------------------------------------------------------------------ cluster

    async def status(self) -> Status:
        """Status of the current endpoint's member (fails over like a read)."""
        response = await self._transport.unary(
            rpc_pb2_grpc.MaintenanceStub, "Status", rpc_pb2.StatusRequest(), idempotent=True
        )
        return Status.from_pb(response)

    async def use_leader(self) -> bool:
        """Send calls to the leader's endpoint from now on, if it is one of ours.

        Asks the current endpoint's member who leads (Maintenance.Status) and where that
        member serves clients (MemberList), and makes the matching endpoint current. True
        when it did; False when there is no leader or none of our endpoints is its (the
        client then keeps its endpoint). Failover is unchanged: a failing leader is left
        for the next endpoint as before, and a later call of this finds the new one.

        Why: a follower serves a write by forwarding it to the leader, and a linearizable
        read by committing a no-op entry through the log (raftstore's ReadIndex runs on
        the leader only), so a busy client that happens to start on a follower doubles
        the hops and adds log writes on every member. etcd's clients balance over members
        because an etcd follower forwards cheaply; here it pays to find the leader.
        """
        status = await self.status()
        if not status.leader:
            return False
        for member in await self.member_list():
            if member.id != status.leader:
                continue
            for url in member.client_urls:
                try:
                    endpoint = parse_endpoint(url)
                except ValueError:
                    continue
                if endpoint in self._transport.endpoints:
                    self._transport.use(self._transport.endpoints.index(endpoint))
                    return True
        return False

    async def member_list(self) -> tuple[Member, ...]:
        response = await self._transport.unary(
            rpc_pb2_grpc.ClusterStub,
            "MemberList",
            rpc_pb2.MemberListRequest(),
            idempotent=True,
        )
        return tuple(Member.from_pb(m) for m in response.members)

    # ------------------------------------------------------------------ leases

    async def grant(self, ttl: int, *, id: int = 0) -> Lease:
        """A new lease of ``ttl`` seconds (``id`` 0: the store picks the ID). A write."""
        request = rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=id)
        response = await self._transport.unary(
            rpc_pb2_grpc.LeaseStub, "LeaseGrant", request, idempotent=False
        )
        if response.error:
            raise rpc.Unknown(response.error)
        return Lease(id=response.ID, ttl=response.TTL)

    async def revoke(self, id: int) -> None:
        """End lease ``id`` now, deleting its keys. A write (repeating it is harmless, but
        the repeat raises :class:`~raftstore.client.errors.LeaseNotFound`)."""
        await self._transport.unary(
            rpc_pb2_grpc.LeaseStub,
            "LeaseRevoke",
            rpc_pb2.LeaseRevokeRequest(ID=id),
            idempotent=False,
        )

    async def time_to_live(self, id: int, *, keys: bool = False) -> LeaseInfo:
        """Remaining TTL of lease ``id`` (``ttl == -1`` when it no longer exists)."""
        response = await self._transport.unary(
            rpc_pb2_grpc.LeaseStub,
            "LeaseTimeToLive",
            rpc_pb2.LeaseTimeToLiveRequest(ID=id, keys=keys),
            idempotent=True,
        )
        return LeaseInfo(
            id=response.ID,
            ttl=response.TTL,
            granted_ttl=response.grantedTTL,
            keys=tuple(response.keys),
        )

    async def leases(self) -> tuple[int, ...]:
        """IDs of every live lease."""
        response = await self._transport.unary(
            rpc_pb2_grpc.LeaseStub, "LeaseLeases", rpc_pb2.LeaseLeasesRequest(), idempotent=True
        )
        return tuple(status.ID for status in response.leases)

    def keepalive(self, lease_id: int) -> AbstractAsyncContextManager[_lease.KeepAlive]:
        """Keep lease ``lease_id`` alive while the block runs; see :mod:`.lease`."""
        return _lease.keep_alive(self._transport, lease_id)

    @asynccontextmanager
    async def lease(self, ttl: int) -> AsyncIterator[_lease.KeepAlive]:
        """Grant a lease, keep it alive while the block runs, revoke it afterwards.

        If the lease is lost meanwhile, the block is cancelled and
        :class:`~raftstore.client.errors.LeaseLost` raised (see :mod:`.lease`).
        """
        granted = await self.grant(ttl)
        try:
            async with self.keepalive(granted.id) as keeper:
                yield keeper
        finally:
            await _lease.revoke_quietly(self._transport, granted.id)

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        key: Data,
        *,
        prefix: bool = False,
        range_end: Data | None = None,
        start_revision: int = 0,
        prev_kv: bool = False,
        progress_notify: bool = False,
        filters: Sequence[WatchFilter] = (),
    ) -> AbstractAsyncContextManager[_watch.Watch]:
        """Watch a key or range: ``async with client.watch(k) as w: async for batch in w``.

        ``start_revision`` 0 means "changes after now". Resumes on another endpoint without
        losing or repeating events; see :mod:`raftstore.client.watch`.
        """
        spec = _watch.WatchSpec.build(
            key,
            prefix=prefix,
            range_end=range_end,
            prev_kv=prev_kv,
            progress_notify=progress_notify,
            filters=filters,
        )
        return _watch.open_watch(self._transport, spec, start_revision=start_revision)


def _cas_result(result: TxnResult) -> CasResult:
    current = None
    if not result.succeeded:
        (read,) = result.responses
        assert isinstance(read, RangeResult)
        current = read.kv
    return CasResult(succeeded=result.succeeded, revision=result.revision, current=current)


@asynccontextmanager
async def open_client(
    endpoints: Sequence[str],
    *,
    tls: rpc.TlsConfig | None = None,
    timeout: float = 5.0,
    retry_window: float = RETRY_WINDOW,
) -> AsyncIterator[Client]:
    """A :class:`Client` for ``endpoints`` (``"host:port"`` or ``"http://host:port"``).

    Calls go to the first endpoint until it fails. ``timeout`` is each attempt's gRPC
    deadline, and how long a watch or keep-alive may go without reaching any endpoint;
    ``retry_window`` how long a read (or a write that never left) keeps trying rounds of
    every endpoint while none can serve it (:mod:`raftstore.client.transport`). Nothing
    connects until the first call, so an unreachable store surfaces there.
    """
    async with open_transport(
        endpoints, tls=tls, timeout=timeout, retry_window=retry_window
    ) as transport:
        yield Client(transport)
