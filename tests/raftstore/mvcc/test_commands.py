"""The command envelope: round trips, kinds, and typed failures on bad bytes."""

from __future__ import annotations

import pytest

from proto.etcdserverpb import rpc_pb2 as pb
from raftstore.mvcc import (
    Command,
    CommandDecodeError,
    CommandKind,
    MvccStore,
    barrier,
    decode_command,
    encode_command,
    make_command,
)
from raftstore.mvcc.commands import FORMAT_VERSION

REQUESTS = [
    (pb.PutRequest(key=b"k", value=b"v", lease=3, prev_kv=True), CommandKind.PUT),
    (pb.DeleteRangeRequest(key=b"a", range_end=b"b"), CommandKind.DELETE_RANGE),
    (pb.TxnRequest(success=[pb.RequestOp(request_put=pb.PutRequest(key=b"k"))]), CommandKind.TXN),
    (pb.CompactionRequest(revision=5, physical=True), CommandKind.COMPACT),
    (pb.LeaseGrantRequest(ID=1, TTL=5), CommandKind.LEASE_GRANT),
    (pb.LeaseRevokeRequest(ID=1), CommandKind.LEASE_REVOKE),
]


@pytest.mark.parametrize(("request_", "kind"), REQUESTS)
def test_make_command_round_trip(request_: pb.PutRequest, kind: CommandKind) -> None:
    data = make_command(request_)
    assert data[0] == FORMAT_VERSION and data[1] == kind
    decoded = decode_command(data)
    assert decoded == Command(kind, request_)
    assert encode_command(decoded) == data


def test_kind_numbers_are_stable() -> None:
    # wire format: these must never change
    assert {k.name: int(k) for k in CommandKind} == {
        "NOOP": 0,
        "PUT": 1,
        "DELETE_RANGE": 2,
        "TXN": 3,
        "COMPACT": 4,
        "LEASE_GRANT": 5,
        "LEASE_REVOKE": 6,
    }


def test_barrier() -> None:
    assert barrier() == bytes((FORMAT_VERSION, CommandKind.NOOP))
    assert decode_command(barrier()) == Command(CommandKind.NOOP)


def test_make_command_rejects_reads_and_others() -> None:
    with pytest.raises(TypeError):
        make_command(pb.RangeRequest(key=b"a"))


def test_command_checks_request_type() -> None:
    with pytest.raises(TypeError):
        Command(CommandKind.PUT, pb.DeleteRangeRequest(key=b"a"))
    with pytest.raises(TypeError):
        Command(CommandKind.NOOP, pb.PutRequest(key=b"a"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x01", "too short"),
        (bytes((2, 1)), "unknown command format version 2"),
        (bytes((1, 200)), "unknown command kind 200"),
        (bytes((1, 0)) + b"x", "NOOP command with a 1-byte payload"),
        (bytes((1, 1)) + b"\xff\xff\xff", "PUT payload does not parse"),
    ],
)
def test_bad_envelopes(data: bytes, message: str) -> None:
    with pytest.raises(CommandDecodeError, match=message):
        decode_command(data)
    store = MvccStore()
    with pytest.raises(CommandDecodeError):
        store.apply(data, index=1)
    assert store.applied_index == 0
