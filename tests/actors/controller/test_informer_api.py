"""The informer against a real API server on a real raftstore member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from actors.client import ApiClient, open_api_client
from actors.controller import Handlers, Informer, InformerFactory
from tests.actors.client.conftest import make, pod
from tests.support.apiserver import apiserver_process
from tests.support.processes import async_wait_for


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def handlers(self) -> Handlers:
        return Handlers(
            on_add=lambda o: self.calls.append(("add", o.metadata.name)),
            on_update=lambda old, new: self.calls.append(("update", new.metadata.name)),
            on_delete=lambda o: self.calls.append(("delete", o.metadata.name)),
        )


async def test_lists_then_follows_changes_with_indexes(
    api: ApiClient, ns: str, nursery: trio.Nursery
) -> None:
    await api.create(pod("before", ns, app="web"))
    informer = Informer(
        api, "pods", namespace=ns, indexers={"app": lambda p: [p.metadata.labels.get("app", "")]}
    )
    rec = Recorder()
    informer.add_handler(rec.handlers())
    assert not informer.has_synced
    await nursery.start(informer.run)
    assert informer.has_synced
    assert rec.calls == [("add", "before")]
    assert [p.metadata.name for p in informer.cache.by_index("app", "web")] == ["before"]

    created = await api.create(pod("after", ns, app="db"))
    await async_wait_for(lambda: informer.cache.get(f"{ns}/after") is not None, timeout=10)
    created.metadata.labels["app"] = "web"
    await api.update(created)
    await async_wait_for(lambda: len(informer.cache.by_index("app", "web")) == 2, timeout=10)
    assert informer.cache.by_index("app", "db") == []
    await api.delete("pods", "before", namespace=ns, grace_period_seconds=0)
    await async_wait_for(lambda: ("delete", "before") in rec.calls, timeout=10)
    assert rec.calls == [
        ("add", "before"),
        ("add", "after"),
        ("update", "after"),
        ("delete", "before"),
    ]
    assert informer.cache.keys() == [f"{ns}/after"]
    assert informer.lists == 1


async def test_late_handler_sees_existing_objects_and_factory_shares(
    api: ApiClient, ns: str, nursery: trio.Nursery
) -> None:
    await api.create(make("ConfigMap", "one", ns))
    factory = InformerFactory(api)
    first = factory.informer("configmaps", namespace=ns)
    assert factory.informer("cm", namespace=ns) is first
    await nursery.start(factory.run)
    rec = Recorder()
    first.add_handler(rec.handlers())
    assert rec.calls == [("add", "one")]
    late: Any = factory.informer("secrets", namespace=ns)
    await late.wait_synced()
    assert len(late.cache) == 0


async def test_relists_on_another_api_server_without_duplicate_calls(
    store: tuple[str, ...], ns: str, api: ApiClient, tmp_path: Path
) -> None:
    """The informer's API server is SIGKILLed; the informer lists again on the other one
    and reports exactly what changed meanwhile -- nothing twice, nothing lost."""
    await api.create(pod("keep", ns))
    await api.create(pod("gone", ns))
    with apiserver_process(store, tmp_path) as first, apiserver_process(store, tmp_path) as second:
        async with open_api_client(
            [first.address, second.address], timeout=5, in_order=True
        ) as client:
            informer = Informer(client, "pods", namespace=ns)
            rec = Recorder()
            informer.add_handler(rec.handlers())
            async with trio.open_nursery() as inner:
                await inner.start(informer.run)
                assert sorted(rec.calls) == [("add", "gone"), ("add", "keep")]
                rec.calls.clear()
                first.kill()
                await api.delete("pods", "gone", namespace=ns, grace_period_seconds=0)
                await api.create(pod("new", ns))
                await async_wait_for(lambda: len(rec.calls) >= 2, timeout=20)
                assert sorted(rec.calls) == [("add", "new"), ("delete", "gone")]
                assert informer.lists >= 2
                assert sorted(informer.cache.keys()) == [f"{ns}/keep", f"{ns}/new"]
                inner.cancel_scope.cancel()
