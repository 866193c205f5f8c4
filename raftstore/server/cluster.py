"""etcd's Cluster and Maintenance services.

Members are Raft members. A member's ID comes from its peer address, so a member added
with ``MemberAdd`` has its ID at once; its name and client URLs appear once it starts and
publishes them (etcd shows an unstarted member the same way: no name, no client URLs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proto import rpc
from proto.etcdserverpb import rpc_pb2
from raftstore.replication import errors as repl
from raftstore.server import errors
from raftstore.server.config import ConfigError, host_port, member_id
from raftstore.server.member import Member

SERVER_VERSION = "3.4.0"  # the etcd API level raftstore implements
MEMBER_CHANGE_TIMEOUT = 10.0


def _address(peer_url: str) -> str:
    try:
        host, port = host_port(peer_url, flag="peerURLs")
    except ConfigError as exc:
        raise rpc.InvalidArgument(f"etcdserver: {exc}") from None
    return f"{host}:{port}"


async def _change_membership(change: Callable[..., Awaitable[None]], address: str) -> None:
    try:
        await change(address, timeout=MEMBER_CHANGE_TIMEOUT)
    except repl.MembershipChangeRejected as exc:
        raise rpc.FailedPrecondition(f"etcdserver: {exc}") from None
    except repl.ReplicationError as exc:
        raise errors.from_replication(exc) from None


class ClusterService:
    def __init__(self, member: Member) -> None:
        self.member = member

    def members(self) -> list[rpc_pb2.Member]:
        status = self.member.log.status()
        addresses = sorted({status.self_id, *status.members})
        with self.member.state.lock:
            published = dict(self.member.state.members)
        out = []
        for address in addresses:
            mid = member_id(address)
            known = published.get(mid)
            if known is not None:
                out.append(known)
            else:
                out.append(rpc_pb2.Member(ID=mid, peerURLs=[f"http://{address}"]))
        return out

    async def MemberList(
        self, request: rpc_pb2.MemberListRequest, ctx: rpc.ServerContext
    ) -> object:
        if request.linearizable:
            await self.member.barrier()
        return rpc_pb2.MemberListResponse(header=self.member.header(), members=self.members())

    async def MemberAdd(self, request: rpc_pb2.MemberAddRequest, ctx: rpc.ServerContext) -> object:
        if len(request.peerURLs) != 1:
            raise rpc.InvalidArgument("etcdserver: exactly one peer URL per member is supported")
        if request.isLearner:
            raise rpc.Unimplemented("etcdserver: learner members are not supported")
        address = _address(request.peerURLs[0])
        if any(member_id(address) == m.ID for m in self.members()):
            raise rpc.FailedPrecondition(errors.PEER_URL_EXIST)
        await _change_membership(self.member.log.add_member, address)
        added = rpc_pb2.Member(ID=member_id(address), peerURLs=[request.peerURLs[0]])
        return rpc_pb2.MemberAddResponse(
            header=self.member.header(), member=added, members=self.members()
        )

    async def MemberRemove(
        self, request: rpc_pb2.MemberRemoveRequest, ctx: rpc.ServerContext
    ) -> object:
        target = next((m for m in self.members() if m.ID == request.ID), None)
        if target is None:
            raise rpc.NotFound(errors.MEMBER_NOT_FOUND)
        address = _address(target.peerURLs[0])
        await _change_membership(self.member.log.remove_member, address)
        return rpc_pb2.MemberRemoveResponse(header=self.member.header(), members=self.members())


class MaintenanceService:
    def __init__(self, member: Member) -> None:
        self.member = member

    async def Status(self, request: rpc_pb2.StatusRequest, ctx: rpc.ServerContext) -> object:
        status = self.member.log.status()
        db_size = self.member.read(lambda s: len(s.snapshot()))
        return rpc_pb2.StatusResponse(
            header=self.member.header(),
            version=SERVER_VERSION,
            dbSize=db_size,
            dbSizeInUse=db_size,
            leader=member_id(status.leader_id) if status.leader_id else 0,
            raftIndex=status.commit_index,
            raftTerm=status.term,
            raftAppliedIndex=status.applied_index,
        )

    async def Alarm(self, request: rpc_pb2.AlarmRequest, ctx: rpc.ServerContext) -> object:
        return rpc_pb2.AlarmResponse(header=self.member.header())

    async def Defragment(
        self, request: rpc_pb2.DefragmentRequest, ctx: rpc.ServerContext
    ) -> object:
        return rpc_pb2.DefragmentResponse(header=self.member.header())

    async def HashKV(self, request: rpc_pb2.HashKVRequest, ctx: rpc.ServerContext) -> object:
        await self.member.barrier()
        digest, compacted = self.member.read(lambda s: (s.hash(), s.compact_revision))
        return rpc_pb2.HashKVResponse(
            header=self.member.header(), hash=digest & 0xFFFFFFFF, compact_revision=compacted
        )
