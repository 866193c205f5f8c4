"""``Storage.guaranteed_update`` starting from a cached copy: one store round trip when
the copy is current, and never a lost or wrong write when it is stale."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.apiserver.storage import Storage
from proto import rpc
from proto.k8s import core_pb2, kinds
from raftstore.client import Client, open_client

INFO = kinds.by_kind("ConfigMap")


class Counting:
    """The store client, counting the reads and transactions Storage sends."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.gets = 0
        self.txns = 0

    async def get(self, *args: Any, **kw: Any) -> Any:
        self.gets += 1
        return await self._client.get(*args, **kw)

    async def txn(self, *args: Any, **kw: Any) -> Any:
        self.txns += 1
        return await self._client.txn(*args, **kw)

    def reset(self) -> None:
        self.gets = self.txns = 0


@pytest.fixture
async def counted(
    rpc_loop: None, store: tuple[str, ...]
) -> AsyncIterator[tuple[Storage, Counting]]:
    async with open_client(store) as client:
        counting = Counting(client)
        yield Storage(counting), counting  # type: ignore[arg-type]


async def _config_map(storage: Storage, **data: str) -> core_pb2.ConfigMap:
    obj = core_pb2.ConfigMap(
        metadata={"name": f"cm-{uuid.uuid4().hex[:8]}", "namespace": "default"}
    )
    obj.data.update(data)
    created: core_pb2.ConfigMap = await storage.create(INFO, obj)
    return created


def _setting(key: str, value: str) -> Any:
    def mutate(current: core_pb2.ConfigMap) -> core_pb2.ConfigMap:
        current.data[key] = value
        return current

    return mutate


async def test_a_current_copy_costs_one_transaction(counted: tuple[Storage, Counting]) -> None:
    storage, counting = counted
    copy = await _config_map(storage, a="1")
    counting.reset()
    name = copy.metadata.name
    written = await storage.guaranteed_update(
        INFO, "default", name, _setting("b", "2"), cached=copy
    )
    assert (counting.gets, counting.txns) == (0, 1)
    assert dict(written.data) == {"a": "1", "b": "2"}
    stored = await storage.require(INFO, "default", name)
    assert dict(stored.data) == {"a": "1", "b": "2"}
    assert stored.metadata.resource_version == written.metadata.resource_version


async def test_a_stale_copy_loses_no_write(counted: tuple[Storage, Counting]) -> None:
    storage, counting = counted
    stale = await _config_map(storage, a="1")
    name = stale.metadata.name
    await storage.guaranteed_update(INFO, "default", name, _setting("other", "x"))
    counting.reset()
    written = await storage.guaranteed_update(
        INFO, "default", name, _setting("b", "2"), cached=stale
    )
    # The first write failed its compare and brought the current object back: no read.
    assert (counting.gets, counting.txns) == (0, 2)
    assert dict(written.data) == {"a": "1", "other": "x", "b": "2"}


async def test_a_refusal_of_a_stale_copy_is_asked_again_of_the_store(
    counted: tuple[Storage, Counting],
) -> None:
    storage, _ = counted
    stale = await _config_map(storage, a="1")
    name = stale.metadata.name
    newer = await storage.guaranteed_update(INFO, "default", name, _setting("a", "2"))
    expected = newer.metadata.resource_version

    def precondition(current: core_pb2.ConfigMap) -> core_pb2.ConfigMap:
        if current.metadata.resource_version != expected:
            raise rpc.Aborted("the object has been modified")
        current.data["b"] = "3"
        return current

    written = await storage.guaranteed_update(INFO, "default", name, precondition, cached=stale)
    assert dict(written.data) == {"a": "2", "b": "3"}


async def test_nothing_to_change_in_a_stale_copy_is_checked_against_the_store(
    counted: tuple[Storage, Counting],
) -> None:
    storage, _ = counted
    stale = await _config_map(storage, a="1")
    name = stale.metadata.name
    await storage.guaranteed_update(INFO, "default", name, _setting("a", "2"))
    # Setting a=1 changes nothing in the stale copy, but the stored object has a=2.
    written = await storage.guaranteed_update(
        INFO, "default", name, _setting("a", "1"), cached=stale
    )
    assert written.data["a"] == "1"
    assert (await storage.require(INFO, "default", name)).data["a"] == "1"


async def test_a_stale_copy_of_a_deleted_object_is_not_found(
    counted: tuple[Storage, Counting],
) -> None:
    storage, _ = counted
    stale = await _config_map(storage, a="1")
    name = stale.metadata.name
    assert await storage.remove(INFO, stale, revision=int(stale.metadata.resource_version))
    with pytest.raises(rpc.NotFound):
        await storage.guaranteed_update(INFO, "default", name, _setting("b", "2"), cached=stale)
