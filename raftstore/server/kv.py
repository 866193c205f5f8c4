"""etcd's KV service: Range, Put, DeleteRange, Txn, Compact.

Writes are proposed through Raft and answered once applied on this member. Range is
linearizable by default (a read barrier first) and local with ``serializable=true``.
Requests are checked before they are proposed, with etcd's messages: an empty key, a
request over 1.5 MiB, or a transaction with too many operations never reaches the log.
"""

from __future__ import annotations

from proto import rpc
from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc import make_command
from raftstore.mvcc.errors import MvccError
from raftstore.server import errors
from raftstore.server.member import Member


def check_txn(request: rpc_pb2.TxnRequest) -> None:
    if max(len(request.compare), len(request.success), len(request.failure)) > errors.MAX_TXN_OPS:
        raise rpc.InvalidArgument(errors.TOO_MANY_OPS)
    for compare in request.compare:
        if not compare.key:
            raise rpc.InvalidArgument(errors.EMPTY_KEY)
    for op in (*request.success, *request.failure):
        which = op.WhichOneof("request")
        if which == "request_txn":
            check_txn(op.request_txn)
        elif which is not None and not getattr(op, which).key:
            raise rpc.InvalidArgument(errors.EMPTY_KEY)


class KVService:
    def __init__(self, member: Member) -> None:
        self.member = member

    def _stamp(self, header: rpc_pb2.ResponseHeader) -> None:
        header.cluster_id = self.member.cluster_id
        header.member_id = self.member.id
        header.raft_term = self.member.log.status().term

    async def Range(
        self, request: rpc_pb2.RangeRequest, ctx: rpc.ServerContext
    ) -> rpc_pb2.RangeResponse:
        if not request.key:
            raise rpc.InvalidArgument(errors.EMPTY_KEY)
        errors.check_size(request.ByteSize())
        if not request.serializable:
            await self.member.barrier()
        try:
            response = self.member.read(lambda store: store.range(request))
        except MvccError as exc:
            raise errors.from_mvcc(exc) from None
        self._stamp(response.header)
        return response

    async def _write(
        self,
        request: rpc_pb2.PutRequest
        | rpc_pb2.DeleteRangeRequest
        | rpc_pb2.TxnRequest
        | rpc_pb2.CompactionRequest,
    ) -> object:
        result = await self.member.write(make_command(request))
        response = result.response
        assert response is not None
        self._stamp(response.header)
        return response

    async def Put(self, request: rpc_pb2.PutRequest, ctx: rpc.ServerContext) -> object:
        if not request.key:
            raise rpc.InvalidArgument(errors.EMPTY_KEY)
        errors.check_size(request.ByteSize())
        return await self._write(request)

    async def DeleteRange(
        self, request: rpc_pb2.DeleteRangeRequest, ctx: rpc.ServerContext
    ) -> object:
        if not request.key:
            raise rpc.InvalidArgument(errors.EMPTY_KEY)
        errors.check_size(request.ByteSize())
        return await self._write(request)

    async def Txn(self, request: rpc_pb2.TxnRequest, ctx: rpc.ServerContext) -> object:
        errors.check_size(request.ByteSize())
        check_txn(request)
        return await self._write(request)

    async def Compact(self, request: rpc_pb2.CompactionRequest, ctx: rpc.ServerContext) -> object:
        return await self._write(request)
