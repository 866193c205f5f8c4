"""Txn: compares, branches, nesting, atomic revisions, read-your-writes, validation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from proto.etcdserverpb import rpc_pb2 as pb
from raftstore.mvcc import errors

from .support import Driver, cmp, delete_op, event_summary, put_op, range_op, txn_op


@pytest.fixture
def d() -> Driver:
    d = Driver()
    d.put(b"a", b"1")  # rev 2
    d.put(b"b", b"2")  # rev 3
    d.put(b"a", b"11")  # rev 4: a version 2, create 2, mod 4
    return d


def run(
    d: Driver,
    *compares: pb.Compare,
    success: Sequence[pb.RequestOp] = (),
    failure: Sequence[pb.RequestOp] = (),
) -> pb.TxnResponse:
    result = d.ok(
        pb.TxnRequest(compare=list(compares), success=list(success), failure=list(failure))
    )
    assert isinstance(result.response, pb.TxnResponse)
    return result.response


def holds(d: Driver, *compares: pb.Compare) -> bool:
    return run(d, *compares).succeeded


# ---------------------------------------------------------------- compares


@pytest.mark.parametrize(
    ("target", "result", "operand", "expected"),
    [
        ("VERSION", "EQUAL", 2, True),
        ("VERSION", "GREATER", 1, True),
        ("VERSION", "LESS", 2, False),
        ("VERSION", "NOT_EQUAL", 2, False),
        ("CREATE", "EQUAL", 2, True),
        ("MOD", "EQUAL", 4, True),
        ("MOD", "LESS", 5, True),
        ("MOD", "GREATER", 4, False),
        ("VALUE", "EQUAL", b"11", True),
        ("VALUE", "GREATER", b"1", True),  # bytewise: b"11" > b"1"
        ("VALUE", "LESS", b"2", True),
        ("VALUE", "NOT_EQUAL", b"11", False),
        ("LEASE", "EQUAL", 0, True),
    ],
)
def test_compare_on_existing_key(
    d: Driver, target: str, result: str, operand: object, expected: bool
) -> None:
    assert holds(d, cmp(b"a", target, result, operand)) is expected


@pytest.mark.parametrize(
    ("target", "result", "operand", "expected"),
    [
        ("VERSION", "EQUAL", 0, True),
        ("CREATE", "EQUAL", 0, True),
        ("MOD", "EQUAL", 0, True),
        ("MOD", "LESS", 1, True),
        ("LEASE", "EQUAL", 0, True),
        ("VALUE", "EQUAL", b"", False),  # a missing key has no value: VALUE always fails
        ("VALUE", "NOT_EQUAL", b"x", False),
    ],
)
def test_compare_on_missing_key(
    d: Driver, target: str, result: str, operand: object, expected: bool
) -> None:
    assert holds(d, cmp(b"zz", target, result, operand)) is expected


def test_compare_operand_must_match_target(d: Driver) -> None:
    # VERSION target with a mod_revision operand: etcd compares against 0.
    compare = pb.Compare(
        key=b"a", target=pb.Compare.VERSION, result=pb.Compare.GREATER, mod_revision=99
    )
    assert holds(d, compare)


def test_ranged_compare_needs_every_key(d: Driver) -> None:
    assert holds(d, cmp(b"a", "VERSION", "GREATER", 0, range_end=b"c"))
    assert not holds(d, cmp(b"a", "VERSION", "EQUAL", 1, range_end=b"c"))  # a has version 2
    assert holds(d, cmp(b"a", "MOD", "LESS", 5, range_end=b"\0"))
    # an empty range compares a zero KeyValue (and VALUE fails)
    assert holds(d, cmp(b"x", "VERSION", "EQUAL", 0, range_end=b"y"))
    assert not holds(d, cmp(b"x", "VALUE", "EQUAL", b"", range_end=b"y"))


def test_all_compares_must_hold(d: Driver) -> None:
    assert holds(d, cmp(b"a", "VERSION", "EQUAL", 2), cmp(b"b", "VALUE", "EQUAL", b"2"))
    assert not holds(d, cmp(b"a", "VERSION", "EQUAL", 2), cmp(b"b", "VALUE", "EQUAL", b"3"))
    assert holds(d)  # no compares: success


# ---------------------------------------------------------------- branches and revisions


def test_success_branch_writes_share_one_revision(d: Driver) -> None:
    result = d.ok(
        pb.TxnRequest(
            compare=[cmp(b"a", "MOD", "EQUAL", 4)],
            success=[put_op(b"c", b"3"), delete_op(b"b"), put_op(b"a", b"12")],
            failure=[put_op(b"never", b"x")],
        )
    )
    response = result.response
    assert isinstance(response, pb.TxnResponse)
    assert response.succeeded and response.header.revision == 5
    assert [event_summary(e) for e in result.events] == [
        ("PUT", b"c", 5, b"3"),
        ("DELETE", b"b", 5, b""),
        ("PUT", b"a", 5, b"12"),
    ]
    assert result.events[1].prev_kv.value == b"2" and result.events[2].prev_kv.value == b"11"
    assert [op.WhichOneof("response") for op in response.responses] == [
        "response_put",
        "response_delete_range",
        "response_put",
    ]
    assert response.responses[1].response_delete_range.deleted == 1
    assert response.responses[0].response_put.header.revision == 5
    assert d.values(b"\0", b"\0") == {b"a": b"12", b"c": b"3"}
    assert d.store.revision == 5


def test_failure_branch(d: Driver) -> None:
    response = run(
        d,
        cmp(b"a", "VALUE", "EQUAL", b"nope"),
        success=[put_op(b"s", b"1")],
        failure=[put_op(b"f", b"1"), range_op(b"a")],
    )
    assert not response.succeeded
    assert [op.WhichOneof("response") for op in response.responses] == [
        "response_put",
        "response_range",
    ]
    assert response.responses[1].response_range.kvs[0].value == b"11"
    assert d.values(b"f") == {b"f": b"1"} and d.values(b"s") == {}


def test_read_only_txn_does_not_bump_revision(d: Driver) -> None:
    response = run(d, success=[range_op(b"a")])
    assert response.header.revision == 4 and d.store.revision == 4
    assert response.responses[0].response_range.header.revision == 4


def test_txn_whose_deletes_match_nothing_does_not_bump_revision(d: Driver) -> None:
    result = d.ok(pb.TxnRequest(success=[delete_op(b"x"), delete_op(b"y", b"z")]))
    assert result.events == () and d.store.revision == 4
    assert isinstance(result.response, pb.TxnResponse) and result.response.header.revision == 4
    assert result.response.responses[0].response_delete_range.header.revision == 4


def test_reads_see_earlier_writes_of_the_same_txn(d: Driver) -> None:
    response = run(
        d,
        success=[
            range_op(b"a"),
            put_op(b"a", b"new"),
            range_op(b"a"),
            delete_op(b"b"),
            range_op(b"\0", b"\0"),
            range_op(b"a", revision=4),  # explicit old revision: the state before the txn
        ],
    )
    before, after, everything, old = (response.responses[i].response_range for i in (0, 2, 4, 5))
    assert before.kvs[0].value == b"11" and before.header.revision == 4
    assert after.kvs[0].value == b"new" and after.kvs[0].mod_revision == 5
    assert after.header.revision == 5
    assert [kv.key for kv in everything.kvs] == [b"a"]
    assert old.kvs[0].value == b"11"


def test_delete_after_delete_in_same_txn(d: Driver) -> None:
    result = d.ok(pb.TxnRequest(success=[delete_op(b"a", b"c"), delete_op(b"b")]))
    assert [event_summary(e)[:2] for e in result.events] == [("DELETE", b"a"), ("DELETE", b"b")]
    assert isinstance(result.response, pb.TxnResponse)
    assert result.response.responses[1].response_delete_range.deleted == 0


def test_nested_txns(d: Driver) -> None:
    inner_true = pb.TxnRequest(
        compare=[cmp(b"b", "VALUE", "EQUAL", b"2")],
        success=[put_op(b"x", b"1")],
        failure=[put_op(b"y", b"1")],
    )
    # Nested compares see the state before the outer txn's writes: "b" is deleted first,
    # yet the nested compare on "b" still holds (etcd decides every branch up front).
    response = run(
        d,
        success=[
            delete_op(b"b"),
            txn_op(inner_true),
            txn_op(pb.TxnRequest(success=[range_op(b"x")])),
        ],
    )
    nested = response.responses[1].response_txn
    assert nested.succeeded and nested.header.revision == 5
    assert nested.responses[0].response_put.header.revision == 5
    seen = response.responses[2].response_txn.responses[0].response_range
    assert seen.kvs[0].value == b"1"
    assert d.values(b"\0", b"\0") == {b"a": b"11", b"x": b"1"}


# ---------------------------------------------------------------- validation


def test_duplicate_keys(d: Driver) -> None:
    def dup(*ops: pb.RequestOp) -> None:
        error = d.fails(pb.TxnRequest(success=list(ops)))
        assert isinstance(error, errors.DuplicateKey)
        assert (error.code, error.message) == (
            "INVALID_ARGUMENT",
            "etcdserver: duplicate key given in txn request",
        )

    dup(put_op(b"k"), put_op(b"k"))
    dup(put_op(b"k"), delete_op(b"k"))
    dup(delete_op(b"a", b"z"), put_op(b"k"))
    dup(delete_op(b"a", b"\0"), put_op(b"k"))
    dup(put_op(b"k"), txn_op(pb.TxnRequest(success=[put_op(b"k")])))
    dup(delete_op(b"k"), txn_op(pb.TxnRequest(failure=[put_op(b"k")])))
    dup(txn_op(pb.TxnRequest(success=[delete_op(b"k")])), put_op(b"k"))
    dup(
        txn_op(pb.TxnRequest(success=[put_op(b"k")])),
        txn_op(pb.TxnRequest(success=[put_op(b"k")])),
    )
    error = d.fails(pb.TxnRequest(failure=[put_op(b"k"), put_op(b"k")]))
    assert isinstance(error, errors.DuplicateKey)


def test_allowed_overlaps(d: Driver) -> None:
    # deletes may overlap; success and failure of one nested txn may put the same key;
    # success and failure lists of the top-level txn are independent.
    d.ok(pb.TxnRequest(success=[delete_op(b"a", b"c"), delete_op(b"b")]))
    d.ok(
        pb.TxnRequest(
            success=[txn_op(pb.TxnRequest(success=[put_op(b"k")], failure=[put_op(b"k")]))]
        )
    )
    d.ok(pb.TxnRequest(success=[put_op(b"k")], failure=[put_op(b"k")]))
    d.ok(pb.TxnRequest(success=[put_op(b"k"), range_op(b"k")]))


def test_too_many_ops(d: Driver) -> None:
    d.ok(pb.TxnRequest(success=[range_op(b"a")] * 128))
    error = d.fails(pb.TxnRequest(success=[range_op(b"a")] * 129))
    assert isinstance(error, errors.TooManyOps)
    assert error.message == "etcdserver: too many operations in txn request"
    assert isinstance(
        d.fails(pb.TxnRequest(compare=[cmp(b"a", "VERSION", "EQUAL", 0)] * 129)), errors.TooManyOps
    )
    # a nested txn gets what its parent left
    nested = pb.TxnRequest(success=[range_op(b"a")] * 29)
    assert isinstance(d.fails(pb.TxnRequest(success=[txn_op(nested)] * 100)), errors.TooManyOps)
    d.ok(pb.TxnRequest(success=[txn_op(pb.TxnRequest(success=[range_op(b"a")] * 28))] * 100))


def test_configurable_op_limit() -> None:
    from raftstore.mvcc import MvccStore

    d = Driver(MvccStore(max_txn_ops=2))
    assert isinstance(d.fails(pb.TxnRequest(success=[range_op(b"a")] * 3)), errors.TooManyOps)


def test_stateless_checks_cover_every_op(d: Driver) -> None:
    assert isinstance(
        d.fails(pb.TxnRequest(compare=[cmp(b"", "VERSION", "EQUAL", 0)])), errors.EmptyKey
    )
    assert isinstance(d.fails(pb.TxnRequest(failure=[put_op(b"")])), errors.EmptyKey)
    assert isinstance(d.fails(pb.TxnRequest(success=[range_op(b"")])), errors.EmptyKey)
    nested = pb.TxnRequest(success=[put_op(b"k", b"v", ignore_value=True)])
    assert isinstance(d.fails(pb.TxnRequest(success=[txn_op(nested)])), errors.ValueProvided)
    # an empty RequestOp: etcd answers "key not found"
    assert isinstance(d.fails(pb.TxnRequest(success=[pb.RequestOp()])), errors.KeyNotFound)


def test_state_checks_only_on_the_taken_branch(d: Driver) -> None:
    bad_put = put_op(b"k", b"v", lease=777)
    error = d.fails(pb.TxnRequest(success=[put_op(b"ok"), bad_put]))
    assert isinstance(error, errors.LeaseNotFound)
    assert d.values(b"ok") == {}
    # the failing op is on the branch not taken: fine
    d.ok(pb.TxnRequest(compare=[cmp(b"a", "VERSION", "EQUAL", 99)], success=[bad_put]))
    assert isinstance(
        d.fails(pb.TxnRequest(success=[put_op(b"ok"), put_op(b"nope", ignore_value=True)])),
        errors.KeyNotFound,
    )
    assert isinstance(
        d.fails(pb.TxnRequest(success=[range_op(b"a", revision=5)])), errors.FutureRevisionError
    )
    nested = pb.TxnRequest(success=[put_op(b"z", lease=777)])
    assert isinstance(
        d.fails(pb.TxnRequest(success=[put_op(b"ok"), txn_op(nested)])), errors.LeaseNotFound
    )


def test_compacted_range_inside_txn(d: Driver) -> None:
    d.ok(pb.CompactionRequest(revision=4))
    error = d.fails(pb.TxnRequest(success=[put_op(b"q"), range_op(b"a", revision=3)]))
    assert isinstance(error, errors.CompactedError) and error.compact_revision == 4
    d.ok(pb.TxnRequest(success=[range_op(b"a", revision=4)]))
