"""Leases: grant, attach, detach, revoke (one revision), deterministic IDs."""

from __future__ import annotations

import pytest

from proto.etcdserverpb import rpc_pb2 as pb
from raftstore.mvcc import MvccStore, errors
from raftstore.mvcc.leases import MAX_LEASE_TTL

from .support import Driver, event_summary, put_op


@pytest.fixture
def d() -> Driver:
    return Driver()


def test_grant_with_explicit_id(d: Driver) -> None:
    result = d.ok(pb.LeaseGrantRequest(ID=77, TTL=30))
    response = result.response
    assert isinstance(response, pb.LeaseGrantResponse)
    assert (response.ID, response.TTL, response.header.revision) == (77, 30, 1)
    assert result.events == () and d.store.revision == 1
    assert d.store.lease_ttl(77) == 30 and d.store.leases() == [77]
    assert d.store.lease_ttl(78) is None and d.store.lease_keys(78) == []


def test_duplicate_id(d: Driver) -> None:
    d.lease(lease_id=5)
    error = d.fails(pb.LeaseGrantRequest(ID=5, TTL=10))
    assert isinstance(error, errors.LeaseExists)
    assert (error.code, error.message) == (
        "FAILED_PRECONDITION",
        "etcdserver: lease already exists",
    )


def test_ttl_minimum_and_maximum(d: Driver) -> None:
    assert d.store.lease_ttl(d.lease(ttl=1)) == 2
    assert d.store.lease_ttl(d.lease(ttl=0)) == 2
    assert d.store.lease_ttl(d.lease(ttl=-5)) == 2
    assert d.store.lease_ttl(d.lease(ttl=MAX_LEASE_TTL)) == MAX_LEASE_TTL
    error = d.fails(pb.LeaseGrantRequest(TTL=MAX_LEASE_TTL + 1))
    assert isinstance(error, errors.LeaseTTLTooLarge) and error.code == "OUT_OF_RANGE"
    store = MvccStore(min_lease_ttl=10)
    assert Driver(store).lease(ttl=3) and store.lease_ttl(store.leases()[0]) == 10


def test_id_zero_picks_deterministically(d: Driver) -> None:
    d.lease(lease_id=2)
    picked = [d.lease() for _ in range(3)]
    assert picked == [1, 3, 4]
    other = Driver()
    other.lease(lease_id=2)
    assert [other.lease() for _ in range(3)] == picked


def test_attach_detach(d: Driver) -> None:
    one, two = d.lease(), d.lease()
    d.put(b"a", b"1", lease=one)
    d.put(b"b", b"1", lease=one)
    assert d.store.lease_keys(one) == [b"a", b"b"]
    d.put(b"a", b"2", lease=two)  # moves to another lease
    assert d.store.lease_keys(one) == [b"b"] and d.store.lease_keys(two) == [b"a"]
    d.put(b"b", b"2")  # no lease: detached
    assert d.store.lease_keys(one) == []
    d.delete(b"a")
    assert d.store.lease_keys(two) == []
    assert d.get(b"b").kvs[0].lease == 0


def test_revoke_deletes_attached_keys_in_one_revision(d: Driver) -> None:
    lease = d.lease()
    d.put(b"x", b"1", lease=lease)  # 2
    d.put(b"a", b"1", lease=lease)  # 3
    d.put(b"keep", b"1")  # 4
    result = d.ok(pb.LeaseRevokeRequest(ID=lease))
    assert isinstance(result.response, pb.LeaseRevokeResponse)
    assert result.response.header.revision == 5 and d.store.revision == 5
    assert [event_summary(e) for e in result.events] == [
        ("DELETE", b"a", 5, b""),
        ("DELETE", b"x", 5, b""),
    ]
    assert result.events[0].prev_kv.lease == lease
    assert d.store.leases() == [] and d.values(b"\0", b"\0") == {b"keep": b"1"}


def test_revoke_without_keys_does_not_bump_revision(d: Driver) -> None:
    lease = d.lease()
    result = d.ok(pb.LeaseRevokeRequest(ID=lease))
    assert result.events == () and d.store.revision == 1


def test_revoke_unknown_lease(d: Driver) -> None:
    error = d.fails(pb.LeaseRevokeRequest(ID=9))
    assert isinstance(error, errors.LeaseNotFound)


def test_revoked_lease_cannot_be_used(d: Driver) -> None:
    lease = d.lease()
    d.ok(pb.LeaseRevokeRequest(ID=lease))
    assert isinstance(d.fails(pb.PutRequest(key=b"a", lease=lease)), errors.LeaseNotFound)
    assert isinstance(
        d.fails(pb.TxnRequest(success=[put_op(b"a", lease=lease)])), errors.LeaseNotFound
    )


def test_txn_attaches_and_deletes(d: Driver) -> None:
    lease = d.lease()
    d.ok(pb.TxnRequest(success=[put_op(b"a", b"1", lease=lease), put_op(b"b", b"1", lease=lease)]))
    assert d.store.lease_keys(lease) == [b"a", b"b"]
    d.delete(b"a", b"z")
    assert d.store.lease_keys(lease) == []
