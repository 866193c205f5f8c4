"""The snapshot file: our state machine's bytes plus the raft metadata pysyncobj needs.

pysyncobj's log compaction calls ``serializer(tmp_path, raft_data)`` (in the raft thread when
a custom serializer is configured) and later ``deserializer(path) -> raft_data``, where
``raft_data`` is ``(last_entry, prev_entry, cluster)``: the two log entries ending at the last
applied index, each ``(command bytes, index, term)``, and the set of member nodes. We write
all of it in our own format, no pickle. The same file is what the leader streams to a
follower that is too far behind (``InstallSnapshot``), so this is also a wire format.

Layout (integers little-endian)::

    magic        8 bytes   b"RSSNAP\\r\\n"
    version      u32       1
    header_len   u32
    header       JSON, UTF-8: {"last": [index, term, command_len],
                               "prev": [index, term, command_len],
                               "members": ["host:port", ...],
                               "state_len": n}
    prev command bytes     (pysyncobj's raw log entry: type byte + our envelope, or its own
    last command bytes      no-op / membership record)
    state        n bytes   StateMachine.snapshot()
    crc32        u32       of everything above

A file that is short, has a bad checksum or an unknown version raises ``CorruptSnapshot``.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass

from raftstore.replication.errors import CorruptSnapshot

MAGIC = b"RSSNAP\r\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")
_CRC = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class LogEntry:
    command: bytes
    index: int
    term: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    last: LogEntry
    prev: LogEntry
    members: tuple[str, ...]
    state: bytes


def encode(snapshot: Snapshot) -> bytes:
    header = json.dumps(
        {
            "last": [snapshot.last.index, snapshot.last.term, len(snapshot.last.command)],
            "prev": [snapshot.prev.index, snapshot.prev.term, len(snapshot.prev.command)],
            "members": sorted(snapshot.members),
            "state_len": len(snapshot.state),
        },
        separators=(",", ":"),
    ).encode()
    body = b"".join(
        (
            _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)),
            header,
            snapshot.prev.command,
            snapshot.last.command,
            snapshot.state,
        )
    )
    return body + _CRC.pack(zlib.crc32(body))


def decode(data: bytes) -> Snapshot:
    if len(data) < _PREFIX.size + _CRC.size:
        raise CorruptSnapshot(f"snapshot too short ({len(data)} bytes)")
    body, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise CorruptSnapshot("snapshot checksum mismatch")
    magic, version, header_len = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise CorruptSnapshot(f"not a raftstore snapshot (magic {magic!r})")
    if version != FORMAT_VERSION:
        raise CorruptSnapshot(f"unknown snapshot format version {version} (this code knows 1)")
    pos = _PREFIX.size
    try:
        header = json.loads(body[pos : pos + header_len])
        pos += header_len
        prev_index, prev_term, prev_len = header["prev"]
        last_index, last_term, last_len = header["last"]
        state_len = header["state_len"]
        members = tuple(str(m) for m in header["members"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptSnapshot(f"bad snapshot header: {exc}") from exc
    prev_cmd = body[pos : pos + prev_len]
    pos += prev_len
    last_cmd = body[pos : pos + last_len]
    pos += last_len
    state = body[pos : pos + state_len]
    if pos + state_len != len(body):
        raise CorruptSnapshot("snapshot length does not match its header")
    return Snapshot(
        last=LogEntry(last_cmd, last_index, last_term),
        prev=LogEntry(prev_cmd, prev_index, prev_term),
        members=members,
        state=state,
    )


def write(path: str, snapshot: Snapshot, *, fsync: bool) -> None:
    """Write ``snapshot`` to ``path`` (pysyncobj hands us a temporary name and renames it)."""
    with open(path, "wb") as f:
        f.write(encode(snapshot))
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def read(path: str) -> Snapshot:
    with open(path, "rb") as f:
        return decode(f.read())
