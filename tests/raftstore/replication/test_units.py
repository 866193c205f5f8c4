"""Pure unit tests: envelope, snapshot file format, failure mapping, config validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pysyncobj import FAIL_REASON
from pysyncobj.journal import FileJournal

from raftstore.replication import (
    CorruptSnapshot,
    MembershipChangeRejected,
    NoLeader,
    NotLeader,
    ProposalDropped,
    ProposalIndeterminate,
    QueueFull,
    RaftConfig,
    UnknownEnvelope,
    snapshot_file,
)
from raftstore.replication._pysyncobj import _Journal, error_for
from raftstore.replication.listsm import ListStateMachine
from raftstore.replication.protocol import Envelope, EnvelopeKind


def test_envelope_round_trip_and_wire_bytes() -> None:
    env = Envelope(EnvelopeKind.COMMAND, b"put k v")
    assert env.encode() == b"\x01\x01put k v"
    assert Envelope.decode(env.encode()) == env
    assert Envelope(EnvelopeKind.BARRIER, b"").encode() == b"\x01\x02"


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x02\x01x", b"\x01\x09x"])
def test_envelope_rejects_unknown(data: bytes) -> None:
    with pytest.raises(UnknownEnvelope):
        Envelope.decode(data)


def _snap() -> snapshot_file.Snapshot:
    return snapshot_file.Snapshot(
        last=snapshot_file.LogEntry(b"\x00\x01\x01abc", 42, 3),
        prev=snapshot_file.LogEntry(b"\x01", 41, 3),
        members=("127.0.0.1:2", "127.0.0.1:1"),
        state=b"\x00state\xff",
    )


def test_snapshot_file_round_trip() -> None:
    data = snapshot_file.encode(_snap())
    assert data.startswith(b"RSSNAP\r\n")
    got = snapshot_file.decode(data)
    assert got.last == _snap().last and got.prev == _snap().prev
    assert got.members == ("127.0.0.1:1", "127.0.0.1:2")
    assert got.state == b"\x00state\xff"


def test_snapshot_file_detects_corruption() -> None:
    data = snapshot_file.encode(_snap())
    for bad in (data[:-1], data[:10], data[:20] + b"X" + data[21:], b""):
        with pytest.raises(CorruptSnapshot):
            snapshot_file.decode(bad)


def test_fail_reasons_map_to_typed_errors() -> None:
    expected = {
        FAIL_REASON.QUEUE_FULL: QueueFull,
        FAIL_REASON.MISSING_LEADER: NoLeader,
        FAIL_REASON.DISCARDED: ProposalDropped,
        FAIL_REASON.NOT_LEADER: NotLeader,
        FAIL_REASON.LEADER_CHANGED: ProposalIndeterminate,
        FAIL_REASON.REQUEST_DENIED: MembershipChangeRejected,
        FAIL_REASON.UNKNOWN_OUTCOME: ProposalIndeterminate,
    }
    for reason, cls in expected.items():
        assert type(error_for(reason)) is cls
    assert isinstance(error_for(99), ProposalIndeterminate)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="3 \\* append_entries_period"):
        RaftConfig(append_entries_period=0.2, election_timeout_min=0.5)
    with pytest.raises(ValueError, match="election_timeout_max"):
        RaftConfig(election_timeout_min=0.5, election_timeout_max=0.5)


def test_list_state_machine_snapshot() -> None:
    sm = ListStateMachine()
    assert sm.apply(b"a", index=2) == 1
    assert sm.apply(b"", index=3) == 2
    other = ListStateMachine()
    other.restore(sm.snapshot())
    assert other.items() == [b"a", b""]


def test_journal_group_commit_flushes_once_per_deferred_block(tmp_path: Path) -> None:
    path = str(tmp_path / "journal")
    j = _Journal(FileJournal(path), path, fsync=True)
    for i in range(5):
        j.add(b"\x00cmd%d" % i, i + 1, 1)
    assert j.flushes == 5  # outside deferred(): one flush per append
    with j.deferred():
        for i in range(5, 50):
            j.add(b"\x00cmd%d" % i, i + 1, 1)
        assert j.flushes == 5
    assert j.flushes == 6  # one range flush for the whole batch
    with j.deferred():
        pass
    assert j.flushes == 6  # nothing dirty, no flush
    j.deleteEntriesFrom(40)
    assert j.flushes == 7  # truncations are flushed at once
    j._destroy()
    reopened = FileJournal(path)
    assert [reopened[i][1] for i in range(len(reopened))] == list(range(1, 41))
    reopened._destroy()
