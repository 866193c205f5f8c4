"""The store's snapshot format: everything needed to rebuild an identical store.

Layout (all integers big-endian)::

    b"RSMV"  u8 format version (1)
    i64 revision   i64 compact_revision   i64 applied_index   i64 next_lease_id
    u32 record count, then per record, in revision order:
        i64 main   i32 sub   u8 flags (bit 0: tombstone)   u32 n   n bytes: mvccpb.KeyValue
    u32 lease count, then per lease, in ID order:
        i64 id   i64 granted ttl
    u32 crc32 of every byte before it

Records carry the full uncompacted history (a tombstone's KeyValue has only its key).
Lease attachments are not stored: they are rebuilt from the latest record of each key.
Not pickle: the format is explicit, versioned, and safe to read from a peer.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from proto.mvccpb import kv_pb2
from raftstore.mvcc.errors import SnapshotFormatError
from raftstore.mvcc.record import Record

__all__ = ["MAGIC", "SNAPSHOT_VERSION", "SnapshotState", "decode_snapshot", "encode_snapshot"]

MAGIC = b"RSMV"
SNAPSHOT_VERSION = 1

_HEADER = struct.Struct(">4sB qqqq")
_COUNT = struct.Struct(">I")
_RECORD = struct.Struct(">qiBI")
_LEASE = struct.Struct(">qq")
_CRC = struct.Struct(">I")
_TOMBSTONE = 1


@dataclass
class SnapshotState:
    revision: int
    compact_revision: int
    applied_index: int
    next_lease_id: int
    records: list[Record] = field(default_factory=list)
    leases: list[tuple[int, int]] = field(default_factory=list)  # (id, ttl), ID order


def encode_snapshot(
    *,
    revision: int,
    compact_revision: int,
    applied_index: int,
    next_lease_id: int,
    records: Iterable[Record],
    leases: Iterable[tuple[int, int]],
) -> bytes:
    out = bytearray(
        _HEADER.pack(
            MAGIC, SNAPSHOT_VERSION, revision, compact_revision, applied_index, next_lease_id
        )
    )
    count_at = len(out)
    out += _COUNT.pack(0)
    n = 0
    for record in records:
        kv = record.to_kv().SerializeToString()
        out += _RECORD.pack(record.main, record.sub, _TOMBSTONE if record.tombstone else 0, len(kv))
        out += kv
        n += 1
    _COUNT.pack_into(out, count_at, n)
    lease_list = list(leases)
    out += _COUNT.pack(len(lease_list))
    for lease_id, ttl in lease_list:
        out += _LEASE.pack(lease_id, ttl)
    out += _CRC.pack(zlib.crc32(out))
    return bytes(out)


def decode_snapshot(data: bytes) -> SnapshotState:
    """Parse and check a snapshot; raises :class:`SnapshotFormatError` on any defect."""
    view = memoryview(data)
    if len(view) < _HEADER.size + _CRC.size:
        raise SnapshotFormatError(f"snapshot too short ({len(view)} bytes)")
    (crc,) = _CRC.unpack_from(view, len(view) - _CRC.size)
    body = view[: len(view) - _CRC.size]
    magic, version, revision, compact, applied, next_lease = _HEADER.unpack_from(body, 0)
    if magic != MAGIC:
        raise SnapshotFormatError(f"not a raftstore MVCC snapshot (magic {bytes(magic)!r})")
    if version != SNAPSHOT_VERSION:
        raise SnapshotFormatError(
            f"unknown snapshot version {version} (this code reads {SNAPSHOT_VERSION})"
        )
    if zlib.crc32(body) != crc:
        raise SnapshotFormatError("snapshot checksum mismatch")
    state = SnapshotState(revision, compact, applied, next_lease)
    try:
        pos = _HEADER.size
        (count,) = _COUNT.unpack_from(body, pos)
        pos += _COUNT.size
        previous = (0, 0)
        for _ in range(count):
            main, sub, flags, size = _RECORD.unpack_from(body, pos)
            pos += _RECORD.size
            if pos + size > len(body):
                raise SnapshotFormatError("snapshot record runs past the end")
            kv = kv_pb2.KeyValue()
            kv.ParseFromString(bytes(body[pos : pos + size]))
            pos += size
            if (main, sub) <= previous or main > revision:
                raise SnapshotFormatError(f"snapshot record at {main}.{sub} out of order")
            previous = (main, sub)
            if flags & _TOMBSTONE:
                record = Record(kv.key, main, sub, True)
            else:
                record = Record(
                    kv.key, main, sub, False, kv.value, kv.create_revision, kv.version, kv.lease
                )
            state.records.append(record)
        (count,) = _COUNT.unpack_from(body, pos)
        pos += _COUNT.size
        for _ in range(count):
            state.leases.append(_LEASE.unpack_from(body, pos))
            pos += _LEASE.size
    except (struct.error, DecodeError) as exc:
        raise SnapshotFormatError(f"truncated or corrupt snapshot: {exc}") from None
    if pos != len(body):
        raise SnapshotFormatError(f"{len(body) - pos} unexpected bytes at the end of the snapshot")
    return state
