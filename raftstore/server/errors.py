"""etcd's client-facing errors, as raftstore raises them.

Messages and status codes are etcd's own (its ``rpctypes`` package), so etcd clients
recognise them: clientv3 matches on the message text.
"""

from __future__ import annotations

from proto import rpc
from raftstore.mvcc.errors import MvccError
from raftstore.replication import errors as repl

MAX_REQUEST_BYTES = 1536 * 1024  # etcd's --max-request-bytes default (1.5 MiB)
MAX_TXN_OPS = 128  # etcd's --max-txn-ops default

EMPTY_KEY = "etcdserver: key is not provided"
REQUEST_TOO_LARGE = "etcdserver: request is too large"
TOO_MANY_OPS = "etcdserver: too many operations in txn request"
NO_LEADER = "etcdserver: no leader"
LEADER_CHANGED = "etcdserver: leader changed"
TIMEOUT = "etcdserver: request timed out"
NOT_CAPABLE = "etcdserver: not capable"
LEASE_NOT_FOUND = "etcdserver: requested lease not found"
COMPACTED = "etcdserver: mvcc: required revision has been compacted"
MEMBER_NOT_FOUND = "etcdserver: member not found"
PEER_URL_EXIST = "etcdserver: Peer URLs already exists"


def from_mvcc(error: MvccError) -> rpc.RpcError:
    """The gRPC error for a deterministic rejection by the MVCC store."""
    message = error.message
    if not message.startswith("etcdserver: "):
        message = f"etcdserver: {message}"
    return rpc.error_named(error.code, message)


def from_replication(error: repl.ReplicationError) -> rpc.RpcError:
    """The gRPC error for a failed proposal, worded as etcd words it."""
    if isinstance(error, repl.NoLeader):
        return rpc.Unavailable(NO_LEADER)
    if isinstance(error, repl.NotLeader | repl.ProposalDropped):
        return rpc.Unavailable(LEADER_CHANGED)
    if isinstance(error, repl.ProposalIndeterminate):
        return rpc.Unavailable(TIMEOUT)
    return rpc.Unavailable(f"etcdserver: {type(error).__name__}: {error}")


def check_size(request_bytes: int) -> None:
    if request_bytes > MAX_REQUEST_BYTES:
        raise rpc.InvalidArgument(REQUEST_TOO_LARGE)
