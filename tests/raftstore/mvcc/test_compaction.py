"""Compaction: what survives, what is refused, and how watches see it."""

from __future__ import annotations

import pytest

from proto.etcdserverpb import rpc_pb2 as pb
from raftstore.mvcc import errors

from .support import Driver, event_summary


@pytest.fixture
def d() -> Driver:
    d = Driver()
    d.put(b"a", b"1")  # 2
    d.put(b"a", b"2")  # 3
    d.put(b"b", b"1")  # 4
    d.delete(b"b")  # 5
    d.put(b"a", b"3")  # 6
    d.put(b"c", b"1")  # 7
    return d


def snapshot_at(d: Driver, revision: int) -> dict[bytes, bytes]:
    return d.values(b"\0", b"\0", revision=revision)


def test_compact_keeps_reads_at_and_after_the_compact_revision(d: Driver) -> None:
    expected = {rev: snapshot_at(d, rev) for rev in range(1, 8)}
    result = d.ok(pb.CompactionRequest(revision=5))
    assert isinstance(result.response, pb.CompactionResponse)
    assert result.response.header.revision == 7 and result.events == ()
    assert d.store.compact_revision == 5 and d.store.revision == 7
    for rev in range(5, 8):
        assert snapshot_at(d, rev) == expected[rev]
    for rev in range(1, 5):
        with pytest.raises(errors.CompactedError) as info:
            snapshot_at(d, rev)
        assert info.value.compact_revision == 5
        assert info.value.code == "OUT_OF_RANGE"
        assert info.value.message == "etcdserver: mvcc: required revision has been compacted"


def test_compaction_discards_history(d: Driver) -> None:
    d.ok(pb.CompactionRequest(revision=7))
    # only the latest version of each live key remains (b's tombstone is gone)
    events = d.store.events_since(7, b"\0", b"\0", prev_kv=False)
    assert [event_summary(e) for e in events] == [("PUT", b"c", 7, b"1")]
    # The surviving history, as a snapshot carries it: the latest version of each live
    # key. b (deleted at 5) and a's older versions are gone.
    from raftstore.mvcc import MvccStore

    restored = MvccStore.restore(d.store.snapshot())
    assert [(r.key, r.main) for r in restored._log] == [(b"a", 6), (b"c", 7)]


def test_compact_at_or_below_current_compaction_is_refused(d: Driver) -> None:
    error = d.fails(pb.CompactionRequest(revision=0))
    assert isinstance(error, errors.CompactedError) and error.compact_revision == 0
    d.ok(pb.CompactionRequest(revision=3))
    for revision in (1, 3):
        error = d.fails(pb.CompactionRequest(revision=revision))
        assert isinstance(error, errors.CompactedError) and error.compact_revision == 3
    d.ok(pb.CompactionRequest(revision=4))


def test_compact_future_revision_is_refused(d: Driver) -> None:
    error = d.fails(pb.CompactionRequest(revision=8))
    assert isinstance(error, errors.FutureRevisionError)
    d.ok(pb.CompactionRequest(revision=7))  # the current revision is fine


def test_compact_empty_store_at_revision_1() -> None:
    d = Driver()
    d.ok(pb.CompactionRequest(revision=1))
    assert d.store.compact_revision == 1
    d.put(b"a", b"1")
    assert d.values(b"a", revision=2) == {b"a": b"1"}


def test_repeated_compactions(d: Driver) -> None:
    for rev in (3, 5, 6, 7):
        d.ok(pb.CompactionRequest(revision=rev))
        assert snapshot_at(d, 7) == {b"a": b"3", b"c": b"1"}
    d.put(b"a", b"4")
    [kv] = d.get(b"a").kvs
    assert (kv.version, kv.create_revision) == (4, 2)


# ---------------------------------------------------------------- watch history


def test_events_since_in_revision_order_with_prev_kv(d: Driver) -> None:
    events = d.store.events_since(3, b"\0", b"\0", prev_kv=True)
    assert [event_summary(e) for e in events] == [
        ("PUT", b"a", 3, b"2"),
        ("PUT", b"b", 4, b"1"),
        ("DELETE", b"b", 5, b""),
        ("PUT", b"a", 6, b"3"),
        ("PUT", b"c", 7, b"1"),
    ]
    assert [e.prev_kv.value if e.HasField("prev_kv") else None for e in events] == [
        b"1",
        None,
        b"1",
        b"2",
        None,
    ]
    no_prev = d.store.events_since(3, b"\0", b"\0", prev_kv=False)
    assert not any(e.HasField("prev_kv") for e in no_prev)


def test_events_since_filters_keys(d: Driver) -> None:
    assert [e.kv.mod_revision for e in d.store.events_since(1, b"a", b"", prev_kv=False)] == [
        2,
        3,
        6,
    ]
    assert [e.kv.key for e in d.store.events_since(1, b"b", b"\0", prev_kv=False)] == [
        b"b",
        b"b",
        b"c",
    ]
    assert d.store.events_since(8, b"\0", b"\0", prev_kv=True) == []
    assert len(d.store.events_since(0, b"\0", b"\0", prev_kv=True)) == 6


def test_events_since_compacted(d: Driver) -> None:
    d.ok(pb.CompactionRequest(revision=5))
    with pytest.raises(errors.CompactedError) as info:
        d.store.events_since(4, b"\0", b"\0", prev_kv=True)
    assert info.value.compact_revision == 5
    # etcd lets a watch start *at* the compact revision; we serve it completely,
    # including the delete at revision 5 and its prev_kv.
    events = d.store.events_since(5, b"\0", b"\0", prev_kv=True)
    assert [event_summary(e) for e in events] == [
        ("DELETE", b"b", 5, b""),
        ("PUT", b"a", 6, b"3"),
        ("PUT", b"c", 7, b"1"),
    ]
    assert events[0].prev_kv.value == b"1" and events[1].prev_kv.value == b"2"
    assert len(d.store.events_since(6, b"\0", b"\0", prev_kv=True)) == 2


def test_apply_events_match_history(d: Driver) -> None:
    result = d.put(b"a", b"9")
    assert list(result.events) == d.store.events_since(8, b"\0", b"\0", prev_kv=True)
