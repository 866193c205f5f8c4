"""Put, Range and DeleteRange outside transactions: etcd's rules one by one."""

from __future__ import annotations

import pytest

from proto.etcdserverpb import rpc_pb2 as pb
from proto.mvccpb import kv_pb2
from raftstore.mvcc import MvccStore, barrier, errors, prefix_end

from .support import Driver, kv_tuple

SortOrder = pb.RangeRequest.SortOrder
SortTarget = pb.RangeRequest.SortTarget


@pytest.fixture
def d() -> Driver:
    return Driver()


# ---------------------------------------------------------------- revisions and versions


def test_empty_store_is_at_revision_1(d: Driver) -> None:
    assert d.store.revision == 1 and d.store.compact_revision == 0
    response = d.get(b"a")
    assert response.header.revision == 1 and response.count == 0 and not response.kvs


def test_put_creates_then_bumps_version(d: Driver) -> None:
    first = d.put(b"a", b"1")
    assert first.response is not None and first.response.header.revision == 2
    d.put(b"a", b"2")
    d.put(b"b", b"x")
    [kv] = d.get(b"a").kvs
    assert kv_tuple(kv) == (b"a", b"2", 2, 3, 2, 0)
    assert d.store.revision == 4


def test_delete_resets_version_and_create_revision(d: Driver) -> None:
    d.put(b"a", b"1")
    d.put(b"a", b"2")
    d.delete(b"a")
    assert d.get(b"a").count == 0
    d.put(b"a", b"3")
    [kv] = d.get(b"a").kvs
    assert kv_tuple(kv) == (b"a", b"3", 5, 5, 1, 0)


def test_put_events_and_prev_kv(d: Driver) -> None:
    d.put(b"a", b"1")
    result = d.put(b"a", b"2", prev_kv=True)
    response = result.response
    assert isinstance(response, pb.PutResponse)
    assert kv_tuple(response.prev_kv) == (b"a", b"1", 2, 2, 1, 0)
    [event] = result.events
    assert event.type == kv_pb2.Event.PUT
    assert kv_tuple(event.kv) == (b"a", b"2", 2, 3, 2, 0)
    assert kv_tuple(event.prev_kv) == (b"a", b"1", 2, 2, 1, 0)
    # Without prev_kv asked, the response has none, but the event still does.
    result = d.put(b"a", b"3")
    assert isinstance(result.response, pb.PutResponse) and not result.response.HasField("prev_kv")
    assert result.events[0].HasField("prev_kv")


def test_put_without_previous_has_no_prev_kv(d: Driver) -> None:
    result = d.put(b"a", b"1", prev_kv=True)
    assert isinstance(result.response, pb.PutResponse)
    assert not result.response.HasField("prev_kv")
    assert not result.events[0].HasField("prev_kv")


def test_empty_key_is_rejected(d: Driver) -> None:
    assert isinstance(d.fails(pb.PutRequest(key=b"", value=b"v")), errors.EmptyKey)
    assert isinstance(d.fails(pb.DeleteRangeRequest(key=b"")), errors.EmptyKey)
    with pytest.raises(errors.EmptyKey) as info:
        d.get(b"")
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.message == "etcdserver: key is not provided"


# ---------------------------------------------------------------- ignore_value / ignore_lease


def test_ignore_value_keeps_value(d: Driver) -> None:
    lease = d.lease()
    d.put(b"a", b"keep", lease=lease)
    d.put(b"a", ignore_value=True)
    [kv] = d.get(b"a").kvs
    assert (kv.value, kv.version, kv.lease) == (b"keep", 2, 0)  # lease not ignored: detached
    assert d.store.lease_keys(lease) == []


def test_ignore_lease_keeps_lease(d: Driver) -> None:
    lease = d.lease()
    d.put(b"a", b"1", lease=lease)
    d.put(b"a", b"2", ignore_lease=True)
    [kv] = d.get(b"a").kvs
    assert (kv.value, kv.lease) == (b"2", lease)
    assert d.store.lease_keys(lease) == [b"a"]


def test_ignore_flags_need_an_existing_key(d: Driver) -> None:
    error = d.fails(pb.PutRequest(key=b"a", ignore_value=True))
    assert isinstance(error, errors.KeyNotFound)
    assert (error.code, error.message) == ("INVALID_ARGUMENT", "etcdserver: key not found")
    assert isinstance(d.fails(pb.PutRequest(key=b"a", ignore_lease=True)), errors.KeyNotFound)
    d.put(b"a", b"1")
    d.delete(b"a")
    assert isinstance(d.fails(pb.PutRequest(key=b"a", ignore_value=True)), errors.KeyNotFound)


def test_ignore_flags_conflict_with_provided_fields(d: Driver) -> None:
    d.put(b"a", b"1")
    error = d.fails(pb.PutRequest(key=b"a", value=b"x", ignore_value=True))
    assert isinstance(error, errors.ValueProvided)
    assert error.message == "etcdserver: value is provided"
    error = d.fails(pb.PutRequest(key=b"a", lease=5, ignore_lease=True))
    assert isinstance(error, errors.LeaseProvided)
    assert error.message == "etcdserver: lease is provided"


def test_put_with_unknown_lease(d: Driver) -> None:
    error = d.fails(pb.PutRequest(key=b"a", value=b"1", lease=42))
    assert isinstance(error, errors.LeaseNotFound)
    assert (error.code, error.message) == ("NOT_FOUND", "etcdserver: requested lease not found")


# ---------------------------------------------------------------- ranges


@pytest.fixture
def abc(d: Driver) -> Driver:
    for key in (b"a", b"ab", b"abc", b"b", b"c"):
        d.put(key, key.upper())
    return d


def test_single_key(abc: Driver) -> None:
    assert abc.values(b"ab") == {b"ab": b"AB"}
    assert abc.values(b"zz") == {}


def test_half_open_range(abc: Driver) -> None:
    assert list(abc.values(b"ab", b"b")) == [b"ab", b"abc"]
    assert abc.values(b"b", b"a") == {}  # range_end <= key selects nothing


def test_prefix(abc: Driver) -> None:
    assert list(abc.values(b"ab", prefix_end(b"ab"))) == [b"ab", b"abc"]
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"


def test_from_key_and_all_keys(abc: Driver) -> None:
    assert list(abc.values(b"b", b"\0")) == [b"b", b"c"]
    assert list(abc.values(b"\0", b"\0")) == [b"a", b"ab", b"abc", b"b", b"c"]


def test_limit_more_count(abc: Driver) -> None:
    response = abc.get(b"\0", b"\0", limit=2)
    assert [kv.key for kv in response.kvs] == [b"a", b"ab"]
    assert response.more and response.count == 5
    response = abc.get(b"\0", b"\0", limit=5)
    assert not response.more and len(response.kvs) == 5
    response = abc.get(b"\0", b"\0", limit=-1)
    assert not response.more and len(response.kvs) == 5


def test_count_only_and_keys_only(abc: Driver) -> None:
    response = abc.get(b"a", b"b", count_only=True, limit=1)
    assert response.count == 3 and not response.kvs and not response.more
    response = abc.get(b"a", b"b", keys_only=True)
    assert [(kv.key, kv.value, kv.version) for kv in response.kvs] == [
        (b"a", b"", 1),
        (b"ab", b"", 1),
        (b"abc", b"", 1),
    ]


def test_sort(abc: Driver) -> None:
    abc.put(b"ab", b"0")  # ab: version 2, mod 7, value "0"

    def keys(**kw: object) -> list[bytes]:
        return [kv.key for kv in abc.get(b"\0", b"\0", **kw).kvs]

    assert keys(sort_order=SortOrder.DESCEND) == [b"c", b"b", b"abc", b"ab", b"a"]
    assert keys(sort_order=SortOrder.ASCEND, sort_target=SortTarget.VALUE) == [
        b"ab",
        b"a",
        b"abc",
        b"b",
        b"c",
    ]
    # NONE with a non-KEY target sorts ascending (etcd), ties stay in key order.
    assert keys(sort_target=SortTarget.VERSION) == [b"a", b"abc", b"b", b"c", b"ab"]
    assert keys(sort_order=SortOrder.DESCEND, sort_target=SortTarget.MOD) == [
        b"ab",
        b"c",
        b"b",
        b"abc",
        b"a",
    ]
    assert keys(sort_order=SortOrder.DESCEND, sort_target=SortTarget.CREATE, limit=2) == [
        b"c",
        b"b",
    ]


def test_invalid_sort_option(abc: Driver) -> None:
    with pytest.raises(errors.InvalidSortOption):
        abc.get(b"a", sort_order=7)


def test_revision_filters_apply_after_count(abc: Driver) -> None:
    abc.put(b"ab", b"again")  # revision 7, create 3
    response = abc.get(b"\0", b"\0", min_mod_revision=4)
    assert [kv.key for kv in response.kvs] == [b"ab", b"abc", b"b", b"c"]
    assert response.count == 5  # etcd counts before the filters
    response = abc.get(b"\0", b"\0", max_mod_revision=3)
    assert [kv.key for kv in response.kvs] == [b"a"]
    response = abc.get(b"\0", b"\0", min_create_revision=4, max_create_revision=5)
    assert [kv.key for kv in response.kvs] == [b"abc", b"b"]
    response = abc.get(b"\0", b"\0", min_mod_revision=4, limit=2)
    assert [kv.key for kv in response.kvs] == [b"ab", b"abc"] and response.more


def test_read_at_past_revision(d: Driver) -> None:
    d.put(b"a", b"1")  # 2
    d.put(b"a", b"2")  # 3
    d.delete(b"a")  # 4
    d.put(b"b", b"1")  # 5
    assert d.values(b"\0", b"\0", revision=1) == {}
    assert d.values(b"\0", b"\0", revision=2) == {b"a": b"1"}
    assert d.values(b"\0", b"\0", revision=3) == {b"a": b"2"}
    assert d.values(b"\0", b"\0", revision=4) == {}
    assert d.values(b"\0", b"\0", revision=5) == {b"b": b"1"}
    response = d.get(b"a", revision=3)
    assert response.header.revision == 5  # the header shows the current revision
    assert kv_tuple(response.kvs[0]) == (b"a", b"2", 2, 3, 2, 0)


def test_read_at_future_revision(d: Driver) -> None:
    d.put(b"a", b"1")
    with pytest.raises(errors.FutureRevisionError) as info:
        d.get(b"a", revision=3)
    assert info.value.code == "OUT_OF_RANGE"
    assert info.value.message == "etcdserver: mvcc: required revision is a future revision"
    assert d.get(b"a", revision=2).count == 1


# ---------------------------------------------------------------- deletes


def test_delete_range_events_in_key_order(abc: Driver) -> None:
    result = abc.delete(b"a", b"b", prev_kv=True)
    response = result.response
    assert isinstance(response, pb.DeleteRangeResponse)
    assert response.deleted == 3 and response.header.revision == 7
    assert [kv.value for kv in response.prev_kvs] == [b"A", b"AB", b"ABC"]
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in result.events] == [
        (kv_pb2.Event.DELETE, b"a", 7),
        (kv_pb2.Event.DELETE, b"ab", 7),
        (kv_pb2.Event.DELETE, b"abc", 7),
    ]
    # A tombstone's kv carries only the key and the delete revision.
    assert kv_tuple(result.events[0].kv) == (b"a", b"", 0, 7, 0, 0)
    assert kv_tuple(result.events[2].prev_kv) == (b"abc", b"ABC", 4, 4, 1, 0)
    assert abc.values(b"\0", b"\0") == {b"b": b"B", b"c": b"C"}


def test_delete_of_nothing_does_not_bump_revision(d: Driver) -> None:
    d.put(b"a", b"1")
    result = d.delete(b"x", prev_kv=True)
    assert isinstance(result.response, pb.DeleteRangeResponse)
    assert result.response.deleted == 0 and result.response.header.revision == 2
    assert result.events == () and d.store.revision == 2
    d.delete(b"a")
    assert d.delete(b"a").events == () and d.store.revision == 3


def test_barrier_changes_nothing(d: Driver) -> None:
    d.put(b"a", b"1")
    before = d.store.hash()
    result = d.store.apply(barrier(), index=99)
    assert result.response is None and result.events == () and result.error is None
    assert d.store.hash() == before and d.store.applied_index == 99


def test_store_configuration_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        MvccStore(64)  # type: ignore[call-arg]
