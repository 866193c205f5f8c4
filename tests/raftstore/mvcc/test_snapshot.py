"""Snapshots: exact round trip, typed failures on damaged data, hash semantics."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import pytest

from proto.etcdserverpb import rpc_pb2 as pb
from raftstore.mvcc import MvccStore, SnapshotFormatError

from .support import Driver


def busy_store() -> Driver:
    d = Driver()
    lease = d.lease(lease_id=7)
    d.put(b"a", b"1")
    d.put(b"a", b"2", lease=lease)
    d.put(b"b", b"x")
    d.delete(b"b")
    d.put(b"c", b"y", lease=lease)
    d.ok(pb.CompactionRequest(revision=4))
    d.put(b"b", b"again")
    d.lease()
    return d


def test_round_trip_is_exact() -> None:
    d = busy_store()
    data = d.store.snapshot()
    restored = MvccStore.restore(data)
    assert restored.snapshot() == data
    assert restored.hash() == d.store.hash()
    assert (restored.revision, restored.compact_revision, restored.applied_index) == (
        d.store.revision,
        d.store.compact_revision,
        d.store.applied_index,
    )
    assert restored.leases() == d.store.leases()
    assert restored.lease_keys(7) == [b"a", b"c"] and restored.lease_ttl(7) == 60
    for rev in range(d.store.compact_revision, d.store.revision + 1):
        request = pb.RangeRequest(key=b"\0", range_end=b"\0", revision=rev)
        assert restored.range(request) == d.store.range(request)
    start = d.store.compact_revision
    assert restored.events_since(start, b"\0", b"\0", prev_kv=True) == d.store.events_since(
        start, b"\0", b"\0", prev_kv=True
    )
    # and they keep behaving the same, including the lease ID counter
    twin = Driver(restored)
    twin.index = d.index
    for driver in (d, twin):
        driver.lease()
        driver.ok(pb.LeaseRevokeRequest(ID=7))
    assert restored.hash() == d.store.hash()


def test_empty_store_round_trip() -> None:
    store = MvccStore()
    restored = MvccStore.restore(store.snapshot())
    assert restored.revision == 1 and restored.hash() == store.hash()


def test_hash_ignores_applied_index_but_not_state() -> None:
    one, two = MvccStore(), MvccStore()
    from raftstore.mvcc import make_command

    one.apply(make_command(pb.PutRequest(key=b"a", value=b"1")), index=5)
    two.apply(make_command(pb.PutRequest(key=b"a", value=b"1")), index=9)
    assert one.hash() == two.hash()
    two.apply(make_command(pb.PutRequest(key=b"a", value=b"2")), index=10)
    assert one.hash() != two.hash()


def _reseal(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda data: b"", "too short"),
        (lambda data: data[:-1], "checksum|corrupt|truncated"),
        (lambda data: data[:10] + bytes([data[10] ^ 0xFF]) + data[11:], "checksum"),
        (lambda data: _reseal(b"NOPE" + data[4:-4]), "not a raftstore MVCC snapshot"),
        (lambda data: _reseal(data[:4] + b"\x09" + data[5:-4]), "unknown snapshot version 9"),
        (lambda data: _reseal(data[:-4] + b"junk"), "unexpected bytes"),
        (lambda data: _reseal(data[:-30]), "truncated|corrupt|past the end"),
    ],
)
def test_damaged_snapshots(mangle: Callable[[bytes], bytes], message: str) -> None:
    data = busy_store().store.snapshot()
    with pytest.raises(SnapshotFormatError, match=message):
        MvccStore.restore(mangle(data))
