"""Replicated commands: the bytes that go through the Raft log.

Every entry in the log is one command, encoded as a small envelope::

    byte 0      format version (currently 1)
    byte 1      command kind (:class:`CommandKind`)
    bytes 2..   the etcd request message, protobuf-encoded (empty for NOOP)

Why this shape and not something else:

* Not pickled method calls (pysyncobj's default): their meaning shifts when code is renamed
  or reordered, and unpickling log entries is a code-execution hazard.
* Not a new protobuf wrapper message: the etcd request messages already *are* the typed,
  versioned, wire-stable description of each write, and the gRPC layer already has them in
  hand, so the payload is exactly what the client sent.
* The two leading bytes make the envelope self-describing and let a future format be
  introduced without guessing: a replica that meets a version or kind it does not know stops
  with :class:`CommandDecodeError` instead of silently skipping an entry (which would make
  replicas diverge). Kinds are never renumbered; new kinds take new numbers.

Reads (RangeRequest) are not commands: linearizable reads are served by the replication
layer after a barrier (:func:`barrier`), which changes nothing but orders the read after
every write committed before it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from google.protobuf.message import DecodeError

from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc.errors import CommandDecodeError

__all__ = [
    "FORMAT_VERSION",
    "Command",
    "CommandKind",
    "Request",
    "barrier",
    "decode_command",
    "encode_command",
    "make_command",
]

FORMAT_VERSION = 1

Request: TypeAlias = (
    rpc_pb2.PutRequest
    | rpc_pb2.DeleteRangeRequest
    | rpc_pb2.TxnRequest
    | rpc_pb2.CompactionRequest
    | rpc_pb2.LeaseGrantRequest
    | rpc_pb2.LeaseRevokeRequest
)


class CommandKind(enum.IntEnum):
    """What a command does. Values are wire format: never reuse or renumber them."""

    NOOP = 0
    PUT = 1
    DELETE_RANGE = 2
    TXN = 3
    COMPACT = 4
    LEASE_GRANT = 5
    LEASE_REVOKE = 6


_REQUEST_TYPES: dict[CommandKind, type[Request] | None] = {
    CommandKind.NOOP: None,
    CommandKind.PUT: rpc_pb2.PutRequest,
    CommandKind.DELETE_RANGE: rpc_pb2.DeleteRangeRequest,
    CommandKind.TXN: rpc_pb2.TxnRequest,
    CommandKind.COMPACT: rpc_pb2.CompactionRequest,
    CommandKind.LEASE_GRANT: rpc_pb2.LeaseGrantRequest,
    CommandKind.LEASE_REVOKE: rpc_pb2.LeaseRevokeRequest,
}
_KIND_OF_TYPE: dict[type[Request], CommandKind] = {
    t: k for k, t in _REQUEST_TYPES.items() if t is not None
}


@dataclass(frozen=True)
class Command:
    """A decoded command: its kind and its request (None exactly when kind is NOOP)."""

    kind: CommandKind
    request: Request | None = None

    def __post_init__(self) -> None:
        expected = _REQUEST_TYPES[self.kind]
        if expected is None:
            if self.request is not None:
                raise TypeError(f"{self.kind.name} takes no request")
        elif type(self.request) is not expected:
            raise TypeError(
                f"{self.kind.name} needs a {expected.__name__}, not {type(self.request).__name__}"
            )


def encode_command(command: Command) -> bytes:
    payload = b"" if command.request is None else command.request.SerializeToString()
    return bytes((FORMAT_VERSION, command.kind)) + payload


def decode_command(data: bytes) -> Command:
    """Inverse of :func:`encode_command`; raises :class:`CommandDecodeError` on bad input."""
    if len(data) < 2:
        raise CommandDecodeError(f"command too short ({len(data)} bytes)")
    version, raw_kind = data[0], data[1]
    if version != FORMAT_VERSION:
        raise CommandDecodeError(
            f"unknown command format version {version} (this code reads {FORMAT_VERSION})"
        )
    try:
        kind = CommandKind(raw_kind)
    except ValueError:
        raise CommandDecodeError(f"unknown command kind {raw_kind}") from None
    request_type = _REQUEST_TYPES[kind]
    if request_type is None:
        if len(data) != 2:
            raise CommandDecodeError(f"{kind.name} command with a {len(data) - 2}-byte payload")
        return Command(kind)
    request = request_type()
    try:
        request.ParseFromString(data[2:])
    except DecodeError as exc:
        raise CommandDecodeError(f"{kind.name} payload does not parse: {exc}") from None
    return Command(kind, request)


def make_command(request: Request) -> bytes:
    """Encode ``request`` as a command, picking the kind from its message type."""
    try:
        kind = _KIND_OF_TYPE[type(request)]
    except KeyError:
        raise TypeError(f"{type(request).__name__} is not a replicated command") from None
    return encode_command(Command(kind, request))


def barrier() -> bytes:
    """A command that changes nothing (NOOP); its apply marks a point in the log."""
    return encode_command(Command(CommandKind.NOOP))
