"""Transactions: compare-and-swap, branches, nesting."""

from __future__ import annotations

import pytest

from raftstore.client import (
    Client,
    PutResult,
    RangeResult,
    TxnResult,
    compare_create,
    compare_lease,
    compare_mod,
    compare_value,
    compare_version,
    key_absent,
    op_delete,
    op_get,
    op_put,
    op_txn,
)

pytestmark = [pytest.mark.usefixtures("rpc_loop"), pytest.mark.needs_etcd]


async def test_compare_and_swap_on_mod_revision(client: Client, prefix: str) -> None:
    key = prefix + "obj"
    created = await client.put_if(key, "v1", mod_revision=0)
    assert created.succeeded and created.current is None
    again = await client.put_if(key, "other", mod_revision=0)
    assert not again.succeeded
    assert again.current is not None and again.current.value == b"v1"
    rv = again.current.mod_revision
    assert rv == created.revision

    updated = await client.put_if(key, "v2", mod_revision=rv)
    assert updated.succeeded
    stale = await client.put_if(key, "v3", mod_revision=rv)
    assert not stale.succeeded
    assert stale.current is not None and stale.current.value == b"v2"

    assert not (await client.delete_if(key, mod_revision=rv)).succeeded
    assert (await client.delete_if(key, mod_revision=updated.revision)).succeeded
    assert (await client.get(key)).count == 0


async def test_txn_branches_and_responses(client: Client, prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    await client.put(a, "1")
    result = await client.txn(
        compare=[compare_value(a, "=", "1"), key_absent(b)],
        success=[op_put(b, "2"), op_get(a), op_get(prefix, prefix=True, count_only=True)],
        failure=[op_delete(a)],
    )
    assert result.succeeded
    put, get_a, count = result.responses
    assert isinstance(put, PutResult) and put.revision == result.revision
    assert isinstance(get_a, RangeResult) and get_a.kv is not None and get_a.kv.value == b"1"
    assert isinstance(count, RangeResult) and count.count == 2

    failed = await client.txn(
        compare=[compare_version(a, ">", 5)],
        success=[op_delete(a)],
        failure=[op_get(a, keys_only=True)],
    )
    assert not failed.succeeded
    (read,) = failed.responses
    assert isinstance(read, RangeResult) and read.count == 1
    assert (await client.get(a)).count == 1


async def test_compare_targets(client: Client, prefix: str) -> None:
    key = prefix + "k"
    put = await client.put(key, "x")
    lease = await client.grant(30)
    await client.put(prefix + "leased", "y", lease=lease.id)
    holds = [
        compare_mod(key, "=", put.revision),
        compare_create(key, "=", put.revision),
        compare_version(key, "=", 1),
        compare_value(key, "!=", "z"),
        compare_value(key, "<", "y"),
        compare_lease(key, "=", 0),
        compare_lease(prefix + "leased", "=", lease.id),
        compare_mod(prefix, ">", 0, prefix=True),
        compare_version(prefix + "nothing", "=", 0),
    ]
    for compare in holds:
        assert (await client.txn(compare=[compare])).succeeded, compare
    assert not (await client.txn(compare=[compare_value(prefix + "nothing", "=", "")])).succeeded
    await client.revoke(lease.id)


async def test_nested_txn(client: Client, prefix: str) -> None:
    key = prefix + "k"
    await client.put(key, "outer")
    inner = op_txn(
        compare=[compare_value(key, "=", "outer")],
        success=[op_put(prefix + "inner", "yes")],
        failure=[op_put(prefix + "inner", "no")],
    )
    result = await client.txn(compare=[compare_version(key, "=", 1)], success=[inner])
    assert result.succeeded
    (nested,) = result.responses
    assert isinstance(nested, TxnResult) and nested.succeeded
    got = await client.get(prefix + "inner")
    assert got.kv is not None and got.kv.value == b"yes"


async def test_compare_rejects_wrong_operand_types() -> None:
    with pytest.raises(TypeError):
        compare_mod("k", "=", b"1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        compare_mod("k", "==", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        op_get("k", prefix=True, range_end="z")
