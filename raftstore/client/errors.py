"""Typed errors of the store client.

Every error the client raises is a :class:`proto.rpc.RpcError`, so code that only cares
about gRPC status codes keeps working: each class below also subclasses the
:mod:`proto.rpc` class of the status code etcd uses for it (``Compacted`` is an
``rpc.OutOfRange``, ``LeaseNotFound`` an ``rpc.NotFound``, ...). The server's message is
kept verbatim in ``.message``.

etcd identifies its errors by status code *and* message (``clientv3/rpctypes``); raftstore
answers with the same pairs, so one table (:data:`BY_MESSAGE`) serves both stores. An
error whose message is not in the table stays the plain :mod:`proto.rpc` class of its code.

Errors the client adds itself:

* :class:`Indeterminate` -- a write failed in a way that does not tell whether the store
  applied it (the connection broke after the request may have been sent, or the server
  said ``request timed out`` / ``leader changed``). Re-read before retrying.
* :class:`EndpointsUnavailable` -- no endpoint could be reached; nothing was sent.
* :class:`Compacted` -- also raised by a watch whose start (or resume) revision has been
  compacted away; then ``compact_revision`` says where history now begins.
* :class:`WatchCanceled` -- the server ended a watch for another reason.
* :class:`LeaseLost` -- a lease being kept alive expired or was revoked.
"""

from __future__ import annotations

from collections.abc import Mapping

from proto import rpc


class StoreError(rpc.RpcError):
    """An error with a meaning in the store's API (base class; never raised itself)."""


class Compacted(StoreError, rpc.OutOfRange):
    """The requested revision is older than the store's compaction point.

    ``compact_revision`` is the oldest revision still available when the store said so
    (watches say; reads do not, and leave it 0).
    """

    def __init__(self, message: str, *, compact_revision: int = 0) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class FutureRevision(StoreError, rpc.OutOfRange):
    """The requested revision is newer than the store's current revision."""


class LeaseNotFound(StoreError, rpc.NotFound):
    """The lease does not exist (never granted, revoked, or expired)."""


class LeaseExists(StoreError, rpc.FailedPrecondition):
    """A lease with the requested ID already exists."""


class LeaseTtlTooLarge(StoreError, rpc.OutOfRange):
    """The requested lease TTL is larger than the store allows."""


class EmptyKey(StoreError, rpc.InvalidArgument):
    """A request named no key."""


class DuplicateKey(StoreError, rpc.InvalidArgument):
    """A transaction writes the same key twice in one branch."""


class TooManyOps(StoreError, rpc.InvalidArgument):
    """A transaction has more operations than the store allows (etcd: 128)."""


class RequestTooLarge(StoreError, rpc.InvalidArgument):
    """The request is larger than the store accepts (etcd: 1.5 MiB by default).

    Also raised for gRPC's own receive limit (status RESOURCE_EXHAUSTED), which a much
    larger request hits before the store sees it.
    """


class NoSpace(StoreError, rpc.ResourceExhausted):
    """The store's database quota is exhausted; only reads and deletes work."""


class NoLeader(StoreError, rpc.Unavailable):
    """The member has no Raft leader; another member may have one."""


class Indeterminate(StoreError, rpc.Unavailable):
    """A write may or may not have been applied; read the key before deciding."""


class EndpointsUnavailable(StoreError, rpc.Unavailable):
    """No endpoint could be reached; the request was not applied."""


class WatchCanceled(StoreError, rpc.Cancelled):
    """The server canceled a watch (for a reason other than compaction)."""


class LeaseLost(StoreError):
    """A lease kept alive by the client expired, or was revoked, or could not be renewed
    before its TTL ran out."""

    def __init__(self, message: str, *, lease_id: int) -> None:
        super().__init__(message)
        self.lease_id = lease_id


# etcd's messages (clientv3/rpctypes/error.go); raftstore uses the same ones.
BY_MESSAGE: Mapping[str, type[StoreError]] = {
    "etcdserver: mvcc: required revision has been compacted": Compacted,
    "etcdserver: mvcc: required revision is a future revision": FutureRevision,
    "etcdserver: requested lease not found": LeaseNotFound,
    "etcdserver: lease already exists": LeaseExists,
    "etcdserver: too large lease TTL": LeaseTtlTooLarge,
    "etcdserver: key is not provided": EmptyKey,
    "etcdserver: duplicate key given in txn request": DuplicateKey,
    "etcdserver: too many operations in txn request": TooManyOps,
    "etcdserver: request is too large": RequestTooLarge,
    "etcdserver: mvcc: database space exceeded": NoSpace,
    "etcdserver: no leader": NoLeader,
}

# Unavailable errors after which a write may have been applied.
INDETERMINATE_MESSAGES = frozenset(
    {
        "etcdserver: request timed out",
        "etcdserver: request timed out, possibly due to previous leader failure",
        "etcdserver: request timed out, possibly due to connection lost",
        "etcdserver: leader changed",
    }
)

_GRPC_TOO_LARGE = "grpc: received message larger than max"


def translate(error: rpc.RpcError) -> rpc.RpcError:
    """The typed error for ``error`` (itself when it has no store meaning)."""
    if isinstance(error, StoreError):
        return error
    cls = BY_MESSAGE.get(error.message)
    if cls is not None:
        return cls(error.message)
    if isinstance(error, rpc.ResourceExhausted) and error.message.startswith(_GRPC_TOO_LARGE):
        return RequestTooLarge(error.message)
    return error
