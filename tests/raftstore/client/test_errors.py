"""etcd's errors arrive as typed exceptions that keep the server's message."""

from __future__ import annotations

import pytest

from proto import rpc
from raftstore.client import (
    Client,
    Compacted,
    DuplicateKey,
    EmptyKey,
    FutureRevision,
    LeaseNotFound,
    RequestTooLarge,
    TooManyOps,
    op_put,
)

pytestmark = [pytest.mark.usefixtures("rpc_loop"), pytest.mark.needs_etcd]


async def test_compacted_revision_read(client: Client, prefix: str) -> None:
    old = await client.put(prefix + "k", "1")
    new = await client.put(prefix + "k", "2")
    await client.compact(new.revision, physical=True)
    with pytest.raises(Compacted) as caught:
        await client.get(prefix + "k", revision=old.revision)
    assert isinstance(caught.value, rpc.OutOfRange)
    assert caught.value.message == "etcdserver: mvcc: required revision has been compacted"
    with pytest.raises(FutureRevision):
        await client.get(prefix + "k", revision=new.revision + 1000)


async def test_lease_not_found(client: Client) -> None:
    with pytest.raises(LeaseNotFound) as caught:
        await client.revoke(0x7EADBEEF)
    assert isinstance(caught.value, rpc.NotFound)
    assert caught.value.message == "etcdserver: requested lease not found"


async def test_txn_errors(client: Client, prefix: str) -> None:
    with pytest.raises(DuplicateKey) as dup:
        await client.txn(success=[op_put(prefix + "k", "1"), op_put(prefix + "k", "2")])
    assert dup.value.message == "etcdserver: duplicate key given in txn request"
    with pytest.raises(TooManyOps) as many:
        await client.txn(success=[op_put(f"{prefix}{i}", "x") for i in range(129)])
    assert many.value.message == "etcdserver: too many operations in txn request"


async def test_empty_key(client: Client) -> None:
    with pytest.raises(EmptyKey) as caught:
        await client.put("", "v")
    assert isinstance(caught.value, rpc.InvalidArgument)
    assert caught.value.message == "etcdserver: key is not provided"


async def test_request_too_large(client: Client, prefix: str) -> None:
    with pytest.raises(RequestTooLarge) as caught:
        await client.put(prefix + "big", b"x" * (1536 * 1024 + 1))
    assert caught.value.message == "etcdserver: request is too large"
    # Far past the limit, gRPC's own receive limit answers first; same type.
    with pytest.raises(RequestTooLarge):
        await client.put(prefix + "huge", b"x" * (3 * 1024 * 1024))
    assert (await client.get(prefix, prefix=True, count_only=True)).count == 0
