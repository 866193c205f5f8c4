"""The MVCC store's error taxonomy.

Two families, deliberately kept apart:

* :class:`MvccError` and its subclasses are *expected* outcomes: a request that etcd would
  reject. They are deterministic (every replica rejects the same command the same way) and
  leave the store untouched. Each carries ``code``, the name of the gRPC status code etcd
  uses for it, and ``message``, etcd's exact status message, so the gRPC layer can pass
  them through unchanged and etcd's own clients (which match on the message text, see
  etcd's ``rpctypes.errStringToError``) recognise them.

* :class:`CommandDecodeError` and :class:`SnapshotFormatError` mean a broken invariant: bytes
  that were supposed to come from our own encoder do not decode. They are never returned
  as a rejection; the caller must stop, because applying or skipping such a command would
  let replicas diverge.

The codes and messages are those of etcd's ``api/v3rpc/rpctypes/error.go``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CommandDecodeError",
    "CompactedError",
    "DuplicateKey",
    "EmptyKey",
    "FutureRevisionError",
    "InvalidSortOption",
    "KeyNotFound",
    "LeaseExists",
    "LeaseNotFound",
    "LeaseProvided",
    "LeaseTTLTooLarge",
    "MvccError",
    "SnapshotFormatError",
    "TooManyOps",
    "ValueProvided",
]


class MvccError(Exception):
    """A request the store rejects, deterministically and without changing anything.

    ``code`` names a gRPC status code (``grpc.StatusCode[code]``); ``message`` is etcd's
    exact status message for the same condition.
    """

    code: ClassVar[str] = "UNKNOWN"
    message: ClassVar[str] = "etcdserver: unknown error"

    def __init__(self) -> None:
        super().__init__(self.message)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.args == getattr(other, "args", None)

    def __hash__(self) -> int:
        return hash((type(self), self.args))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CompactedError(MvccError):
    """The requested revision is older than the compact revision; its history is gone."""

    code = "OUT_OF_RANGE"
    message = "etcdserver: mvcc: required revision has been compacted"

    def __init__(self, compact_revision: int) -> None:
        Exception.__init__(self, self.message, compact_revision)
        self.compact_revision = compact_revision

    def __repr__(self) -> str:
        return f"CompactedError(compact_revision={self.compact_revision})"


class FutureRevisionError(MvccError):
    code = "OUT_OF_RANGE"
    message = "etcdserver: mvcc: required revision is a future revision"


class EmptyKey(MvccError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: key is not provided"


class KeyNotFound(MvccError):
    """ignore_value/ignore_lease on a key that does not exist (also: an empty txn op)."""

    code = "INVALID_ARGUMENT"
    message = "etcdserver: key not found"


class ValueProvided(MvccError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: value is provided"


class LeaseProvided(MvccError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: lease is provided"


class TooManyOps(MvccError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: too many operations in txn request"


class DuplicateKey(MvccError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: duplicate key given in txn request"


class InvalidSortOption(MvccError):
    """An out-of-enum sort order or target (older etcd releases checked this; newer don't)."""

    code = "INVALID_ARGUMENT"
    message = "etcdserver: invalid sort option"


class LeaseNotFound(MvccError):
    code = "NOT_FOUND"
    message = "etcdserver: requested lease not found"


class LeaseExists(MvccError):
    code = "FAILED_PRECONDITION"
    message = "etcdserver: lease already exists"


class LeaseTTLTooLarge(MvccError):
    code = "OUT_OF_RANGE"
    message = "etcdserver: too large lease TTL"


class CommandDecodeError(ValueError):
    """A replicated command's bytes cannot be decoded (corrupt, or from a newer format)."""


class SnapshotFormatError(ValueError):
    """Snapshot bytes are corrupt, truncated, or in a format this code does not know."""
