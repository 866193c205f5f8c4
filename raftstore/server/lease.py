"""etcd's Lease service and the leader's lessor.

Which leases exist, their granted TTLs and attached keys are replicated state. *When* a
lease expires is decided by the Raft leader alone, from its own clock, and carried out by
proposing a revoke through Raft — never by a follower's clock. The lessor keeps one
deadline per lease while this member leads:

* on becoming leader every deadline restarts at ``now + TTL`` (etcd does the same), so a
  failover never expires a lease whose holder kept it alive on the old leader;
* a keep-alive moves the deadline to ``now + TTL``; keep-alives and TTL queries that reach a
  follower are forwarded to the leader's client address;
* the lessor is level-triggered: each tick it reconciles its deadlines with the leases in
  the store (new ones start at ``now + TTL``, revoked ones are dropped) and revokes the
  expired ones.
"""

from __future__ import annotations

import logging
import math

import trio

from proto import rpc
from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftstore.mvcc import make_command
from raftstore.server import errors
from raftstore.server.member import Member

log = logging.getLogger(__name__)

TICK = 0.25  # seconds between expiry checks on the leader


class Lessor:
    """Lease deadlines on the leader; see the module docstring."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self._deadlines: dict[int, float] = {}
        self._leading_term: int | None = None

    def _reconcile(self) -> None:
        status = self.member.log.status()
        if not status.is_leader:
            self._leading_term = None
            self._deadlines.clear()
            return
        now = trio.current_time()
        if self._leading_term != status.term:
            self._leading_term = status.term
            self._deadlines.clear()
        live = self.member.read(lambda s: {lid: s.lease_ttl(lid) or 0 for lid in s.leases()})
        for lease_id in list(self._deadlines):
            if lease_id not in live:
                del self._deadlines[lease_id]
        for lease_id, ttl in live.items():
            self._deadlines.setdefault(lease_id, now + ttl)

    def is_leader(self) -> bool:
        self._reconcile()
        return self._leading_term is not None

    def keepalive(self, lease_id: int) -> int:
        """Renew on the leader; the TTL, or 0 when the lease does not exist."""
        self._reconcile()
        ttl = self.member.read(lambda s: s.lease_ttl(lease_id))
        if ttl is None:
            return 0
        self._deadlines[lease_id] = trio.current_time() + ttl
        return ttl

    def remaining(self, lease_id: int) -> int | None:
        self._reconcile()
        deadline = self._deadlines.get(lease_id)
        if deadline is None:
            return None
        return max(0, math.ceil(deadline - trio.current_time()))

    async def run(self) -> None:
        while True:
            self._reconcile()
            now = trio.current_time()
            for lease_id in [lid for lid, d in self._deadlines.items() if d <= now]:
                try:
                    await self.member.write(make_command(rpc_pb2.LeaseRevokeRequest(ID=lease_id)))
                    log.info("lease expired id=%x", lease_id)
                except rpc.RpcError as exc:
                    log.warning("lease revoke failed id=%x error=%s", lease_id, exc)
                self._deadlines.pop(lease_id, None)
            await trio.sleep(TICK)


class LeaseService:
    def __init__(self, member: Member, lessor: Lessor) -> None:
        self.member = member
        self.lessor = lessor

    async def _write(
        self, request: rpc_pb2.LeaseGrantRequest | rpc_pb2.LeaseRevokeRequest
    ) -> object:
        result = await self.member.write(make_command(request))
        response = result.response
        assert response is not None
        response.header.CopyFrom(self.member.header(response.header.revision))
        return response

    async def LeaseGrant(
        self, request: rpc_pb2.LeaseGrantRequest, ctx: rpc.ServerContext
    ) -> object:
        return await self._write(request)

    async def LeaseRevoke(
        self, request: rpc_pb2.LeaseRevokeRequest, ctx: rpc.ServerContext
    ) -> object:
        return await self._write(request)

    async def LeaseTimeToLive(
        self, request: rpc_pb2.LeaseTimeToLiveRequest, ctx: rpc.ServerContext
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        if not self.lessor.is_leader():
            target = await self._leader_target()
            async with rpc.connect(target) as channel:
                stub = channel.stub(rpc_pb2_grpc.LeaseStub)
                response: rpc_pb2.LeaseTimeToLiveResponse = await stub.LeaseTimeToLive(
                    request, timeout=5
                )
                return response
        granted = self.member.read(lambda s: s.lease_ttl(request.ID))
        if granted is None:
            return rpc_pb2.LeaseTimeToLiveResponse(
                header=self.member.header(), ID=request.ID, TTL=-1
            )
        keys = self.member.read(lambda s: s.lease_keys(request.ID)) if request.keys else []
        remaining = self.lessor.remaining(request.ID)
        return rpc_pb2.LeaseTimeToLiveResponse(
            header=self.member.header(),
            ID=request.ID,
            TTL=granted if remaining is None else remaining,
            grantedTTL=granted,
            keys=keys,
        )

    async def LeaseLeases(
        self, request: rpc_pb2.LeaseLeasesRequest, ctx: rpc.ServerContext
    ) -> object:
        await self.member.barrier()
        ids = self.member.read(lambda s: s.leases())
        return rpc_pb2.LeaseLeasesResponse(
            header=self.member.header(), leases=[rpc_pb2.LeaseStatus(ID=i) for i in ids]
        )

    async def _leader_target(self) -> str:
        url = self.member.leader_client_url()
        if url is None:
            raise rpc.Unavailable(errors.NO_LEADER)
        return url.split("://", 1)[-1]

    async def LeaseKeepAlive(
        self, requests: rpc.RequestStream[rpc_pb2.LeaseKeepAliveRequest], ctx: rpc.ServerContext
    ) -> None:
        async for request in requests:
            if self.lessor.is_leader():
                ttl = self.lessor.keepalive(request.ID)
            else:
                ttl = await self._forward_keepalive(request.ID)
            await ctx.send(
                rpc_pb2.LeaseKeepAliveResponse(header=self.member.header(), ID=request.ID, TTL=ttl)
            )

    async def _forward_keepalive(self, lease_id: int) -> int:
        target = await self._leader_target()
        async with rpc.connect(target) as channel:
            stub = channel.stub(rpc_pb2_grpc.LeaseStub)
            async with stub.LeaseKeepAlive(timeout=5) as stream:
                await stream.send(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
                response = await stream.receive()
        if response is None:
            raise rpc.Unavailable(errors.LEADER_CHANGED)
        return int(response.TTL)
