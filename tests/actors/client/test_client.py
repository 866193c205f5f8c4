"""The API client against a real API server on a real raftstore member."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors import client as apiclient
from actors.client import ApiClient, EventType, open_api_client
from proto import rpc
from proto.apiserver import apiserver_pb2
from proto.k8s import core_pb2
from proto.testing import echo_pb2
from tests.support.ports import free_port

from .conftest import make, pod


async def test_create_get_typed(api: ApiClient, ns: str) -> None:
    created = await api.create(pod("web", ns, app="web"))
    assert isinstance(created, core_pb2.Pod)
    assert created.metadata.uid and created.metadata.resource_version
    got = await api.get(core_pb2.Pod, "web", namespace=ns)
    assert isinstance(got, core_pb2.Pod)
    assert got.kind == "Pod" and got.api_version == "v1"
    assert got.metadata.uid == created.metadata.uid
    assert (await api.get("po", "web", namespace=ns)).metadata.name == "web"


async def test_typed_errors(api: ApiClient, ns: str) -> None:
    with pytest.raises(apiclient.NotFound) as missing:
        await api.get("pods", "nope", namespace=ns)
    assert isinstance(missing.value, rpc.NotFound)
    assert missing.value.reason == "NotFound" and "not found" in missing.value.message

    await api.create(pod("a", ns))
    with pytest.raises(apiclient.AlreadyExists):
        await api.create(pod("a", ns))

    stale = await api.get("pods", "a", namespace=ns)
    await api.patch_merge("pods", "a", {"metadata": {"labels": {"x": "1"}}}, namespace=ns)
    with pytest.raises(apiclient.Conflict) as conflict:
        await api.update(stale)
    assert isinstance(conflict.value, rpc.Aborted)

    bad = make("Pod", "Not_Valid", ns)
    with pytest.raises(apiclient.Invalid) as invalid:
        await api.create(bad)
    assert "Not_Valid" in invalid.value.message or "metadata.name" in invalid.value.message

    with pytest.raises(apiclient.Invalid, match="unknown kind"):
        await api.get("flurbs", "x")


async def test_list_selectors_and_pages(api: ApiClient, ns: str) -> None:
    for i in range(5):
        await api.create(pod(f"p{i}", ns, tier="a" if i % 2 else "b"))
    everything = await api.list("pods", namespace=ns)
    assert sorted(p.metadata.name for p in everything.items) == [f"p{i}" for i in range(5)]
    assert int(everything.resource_version) > 0
    tier_a = await api.list("pods", namespace=ns, label_selector="tier=a")
    assert sorted(p.metadata.name for p in tier_a.items) == ["p1", "p3"]
    named = await api.list("pods", namespace=ns, field_selector="metadata.name=p2")
    assert [p.metadata.name for p in named.items] == ["p2"]
    first = await api.list("pods", namespace=ns, limit=2)
    assert len(first.items) == 2 and first.continue_
    paged = await api.list_all("pods", namespace=ns, limit=2)
    assert len(paged.items) == 5
    across = await api.list("pods", namespace=None, label_selector="tier=b")
    assert {p.metadata.namespace for p in across.items} >= {ns}


async def test_update_status_patch_delete(api: ApiClient, ns: str) -> None:
    created = await api.create(pod("w", ns))
    created.metadata.labels["v"] = "2"
    updated = await api.update(created)
    assert updated.metadata.labels["v"] == "2"
    updated.status.phase = "Running"
    assert (await api.update_status(updated)).status.phase == "Running"
    patched = await api.patch_merge(
        "pods", "w", {"metadata": {"labels": {"v": None}}}, namespace=ns
    )
    assert "v" not in patched.metadata.labels
    deleted = await api.delete("pods", "w", namespace=ns)
    assert deleted.object.metadata.name == "w"
    with pytest.raises(apiclient.NotFound):
        await api.get("pods", "w", namespace=ns)


async def test_bind(api: ApiClient, ns: str) -> None:
    await api.create(pod("b", ns))
    bound = await api.bind("b", "node-1", namespace=ns)
    assert bound.spec.node_name == "node-1"
    with pytest.raises(apiclient.Conflict):
        await api.bind("b", "node-2", namespace=ns)


async def test_watch_yields_typed_events(api: ApiClient, ns: str) -> None:
    start = await api.list("configmaps", namespace=ns)
    async with api.watch("cm", namespace=ns, resource_version=start.resource_version) as events:
        cm = make("ConfigMap", "c", ns)
        cm.data["k"] = "v"
        await api.create(cm)
        await api.patch_merge("cm", "c", {"data": {"k": "w"}}, namespace=ns)
        await api.delete("cm", "c", namespace=ns)
        seen = []
        with trio.fail_after(10):
            async for event in events:
                seen.append((event.type, event.object.data.get("k")))
                if event.type is EventType.DELETED:
                    break
    assert seen == [
        (EventType.ADDED, "v"),
        (EventType.MODIFIED, "w"),
        (EventType.DELETED, "w"),
    ]
    assert isinstance(event.object, core_pb2.ConfigMap)


async def test_reads_and_unsent_writes_fail_over(server: rpc.Server, ns: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with open_api_client([dead, server.address], timeout=5, in_order=True) as api:
        assert api.address == dead
        namespace = await api.get("namespaces", ns)
        assert namespace.metadata.name == ns
        assert api.address == server.address  # the next call starts at the one that answered
        await api.create(make("ConfigMap", "after-failover", ns))

    # A first write to a dead address never left: it goes to the next one, once.
    async with open_api_client([dead, server.address], timeout=5, in_order=True) as api:
        created = await api.create(make("ConfigMap", "first-write", ns))
        assert created.metadata.uid and api.address == server.address
        with pytest.raises(apiclient.AlreadyExists):
            await api.create(make("ConfigMap", "first-write", ns))


class _StoreDown:
    """An API server that took a write and could not say how it ended."""

    def __init__(self) -> None:
        self.creates = 0

    async def Create(self, request: Any, ctx: rpc.ServerContext) -> Any:
        self.creates += 1
        raise rpc.Unavailable("the store did not answer")


async def test_a_write_whose_outcome_is_unknown_is_not_sent_again(
    nursery: trio.Nursery, server: rpc.Server, ns: str
) -> None:
    unsure = _StoreDown()
    first: rpc.Server = await nursery.start(
        rpc.serve, [rpc.Service.of(unsure, apiserver_pb2, "ApiServer")]
    )
    async with open_api_client([first.address, server.address], timeout=5, in_order=True) as api:
        with pytest.raises(apiclient.ServiceUnavailable) as failed:
            await api.create(make("ConfigMap", "maybe", ns))
        assert not isinstance(failed.value, apiclient.Unreachable)
        with pytest.raises(apiclient.NotFound):
            await api.get("ConfigMap", "maybe", namespace=ns)  # the second never saw it
    assert unsure.creates == 1


async def test_unreachable_names_every_address_for_writes_too() -> None:
    dead = [f"127.0.0.1:{port}" for port in (free_port(), free_port())]
    async with open_api_client(dead, timeout=5) as api:
        with pytest.raises(apiclient.Unreachable) as unreachable:
            await api.create(make("ConfigMap", "nowhere", "default"))
    assert unreachable.value.addresses == tuple(dead)


async def test_unreachable_names_every_address() -> None:
    dead = [f"127.0.0.1:{port}" for port in (free_port(), free_port())]
    async with open_api_client(dead, timeout=5) as api:
        with pytest.raises(apiclient.Unreachable) as unreachable:
            await api.list("pods")
    assert unreachable.value.addresses == tuple(dead)
    assert all(address in str(unreachable.value) for address in dead)
    assert isinstance(unreachable.value, rpc.Unavailable)


class _Echo:
    """Some other program's gRPC service, on a port the client was told is an API server."""

    async def Unary(self, request: echo_pb2.EchoRequest, ctx: rpc.ServerContext) -> Any:
        return echo_pb2.EchoReply(text=request.text)


async def test_an_address_serving_another_grpc_service_is_named_and_passed_over(
    nursery: trio.Nursery, server: rpc.Server, ns: str
) -> None:
    other: rpc.Server = await nursery.start(rpc.serve, [rpc.Service.of(_Echo(), echo_pb2, "Echo")])
    async with open_api_client([other.address], timeout=5) as api:
        with pytest.raises(apiclient.ServiceUnavailable) as read:
            await api.get("namespaces", ns)
        with pytest.raises(apiclient.ServiceUnavailable) as write:
            await api.create(make("ConfigMap", "nowhere", ns))
    for failure in (read.value, write.value):
        assert other.address in failure.message
        assert "does not serve this Raftsman API call" in failure.message
        assert not isinstance(failure, apiclient.Unreachable)

    async with open_api_client([other.address, server.address], timeout=5, in_order=True) as api:
        assert (await api.get("namespaces", ns)).metadata.name == ns  # passed over
        assert api.address == server.address
    async with open_api_client([other.address, server.address], timeout=5, in_order=True) as api:
        await api.create(make("ConfigMap", "passed-over", ns))  # writes too
        assert api.address == server.address
