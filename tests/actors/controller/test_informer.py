"""The informer and the controller scaffold on fakes and trio's fake clock.

``FakeApi`` is the seam: ``list_all`` returns a scripted list and ``watch`` replays
scripted streams (events, then an end, an error, or silence). Everything runs on
``autojump_clock``, so timeouts and backoffs cost no real time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.lowlevel

from actors.client import EventType, Expired, ObjectList, ServiceUnavailable, WatchEvent
from actors.controller import Controller, Handlers, Informer, PermanentError, TransientError
from proto.k8s import kinds
from tests.support.processes import async_wait_for


def pod(name: str, rv: int, **labels: str) -> Any:
    p = kinds.by_kind("Pod").new()
    p.metadata.name = name
    p.metadata.namespace = "ns"
    p.metadata.resource_version = str(rv)
    p.metadata.labels.update(labels)
    return p


def event(type_: EventType, obj: Any) -> WatchEvent:
    return WatchEvent(type=type_, object=obj)


def bookmark(rv: int) -> WatchEvent:
    mark = kinds.by_kind("Pod").new()
    mark.metadata.resource_version = str(rv)
    return WatchEvent(type=EventType.BOOKMARK, object=mark)


class Stream:
    def __init__(self, events: list[Any], end: str) -> None:
        self.events = deque(events)
        self.end = end  # "close" | "expired" | "error" | "hang"

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> WatchEvent:
        await trio.lowlevel.checkpoint()
        if self.events:
            item = self.events.popleft()
            if isinstance(item, float):  # a pause before the next event
                await trio.sleep(item)
                return await self.__anext__()
            return item  # type: ignore[no-any-return]
        if self.end == "expired":
            raise Expired("too old resource version")
        if self.end == "error":
            raise ServiceUnavailable("connection reset")
        if self.end == "hang":
            await trio.sleep(math.inf)
        raise StopAsyncIteration


class FakeApi:
    def __init__(self) -> None:
        self.lists: deque[tuple[list[Any], str]] = deque()
        self.streams: deque[Stream] = deque()
        self.watch_calls: list[str] = []
        self.list_calls = 0

    async def list_all(self, kind: Any, **kw: Any) -> ObjectList:
        self.list_calls += 1
        items, rv = self.lists.popleft() if len(self.lists) > 1 else self.lists[0]
        return ObjectList(items=list(items), resource_version=rv, continue_="")

    @asynccontextmanager
    async def watch(
        self, kind: Any, *, resource_version: str = "", **kw: Any
    ) -> AsyncIterator[Stream]:
        self.watch_calls.append(resource_version)
        if self.streams:
            yield self.streams.popleft()
        else:
            yield Stream([], "hang")


class Calls:
    def __init__(self) -> None:
        self.log: list[tuple[str, str, str]] = []

    def handlers(self) -> Handlers:
        def rv(o: Any) -> str:
            return str(o.metadata.resource_version)

        return Handlers(
            on_add=lambda o: self.log.append(("add", o.metadata.name, rv(o))),
            on_update=lambda old, new: self.log.append(("update", new.metadata.name, rv(new))),
            on_delete=lambda o: self.log.append(("delete", o.metadata.name, rv(o))),
        )


async def test_synced_gate_then_events_in_order(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([pod("a", 5), pod("b", 6)], "10"))
    api.streams.append(
        Stream(
            [
                0.5,
                event(EventType.MODIFIED, pod("a", 11)),
                event(EventType.ADDED, pod("c", 12)),
                event(EventType.DELETED, pod("b", 13)),
                bookmark(20),
            ],
            "hang",
        )
    )
    informer = Informer(api, "pods", indexers={"app": lambda p: [p.metadata.labels.get("app", "")]})  # type: ignore[arg-type]
    calls = Calls()
    informer.add_handler(calls.handlers())
    await nursery.start(informer.run)
    assert informer.has_synced
    assert calls.log == [("add", "a", "5"), ("add", "b", "6")]  # the list, before any event
    await trio.sleep(1)
    assert calls.log[2:] == [("update", "a", "11"), ("add", "c", "12"), ("delete", "b", "13")]
    assert sorted(informer.cache.keys()) == ["ns/a", "ns/c"]
    assert informer.resource_version == "20"  # the bookmark moved it
    assert api.watch_calls == ["10"]


async def test_expired_relists_and_diffs_without_duplicates(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([pod("a", 5), pod("b", 6), pod("c", 7)], "10"))
    # The second list: a unchanged, b changed, c gone, d new.
    api.lists.append(([pod("a", 5), pod("b", 15), pod("d", 16)], "30"))
    api.streams.append(Stream([0.5], "expired"))
    informer = Informer(api, "pods")  # type: ignore[arg-type]
    calls = Calls()
    informer.add_handler(calls.handlers())
    await nursery.start(informer.run)
    calls.log.clear()
    await trio.sleep(1)
    assert sorted(calls.log) == [("add", "d", "16"), ("delete", "c", "7"), ("update", "b", "15")]
    assert informer.lists == 2 and api.watch_calls == ["10", "30"]


async def test_broken_stream_backs_off_and_relists(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([pod("a", 5)], "10"))
    api.lists.append(([pod("a", 5)], "11"))
    api.streams.append(Stream([], "error"))
    informer = Informer(api, "pods")  # type: ignore[arg-type]
    await nursery.start(informer.run)
    start = trio.current_time()
    await async_wait_for(lambda: len(api.watch_calls) >= 2, timeout=5, interval=0.01)
    waited = trio.current_time() - start
    assert 0.05 <= waited <= 1.0  # one backoff step (0.1 s +/- jitter), not a busy loop
    assert informer.lists == 2 and api.watch_calls == ["10", "11"]


async def test_a_silent_watch_is_abandoned_after_the_idle_timeout(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([], "10"))
    api.streams.append(Stream([], "hang"))
    informer = Informer(api, "pods", idle_timeout=30)  # type: ignore[arg-type]
    await nursery.start(informer.run)
    await trio.sleep(29)
    assert api.watch_calls == ["10"]
    await trio.sleep(2)
    assert len(api.watch_calls) == 2 and informer.lists == 2


async def test_handler_errors_do_not_stop_the_informer_and_late_handlers_replay(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([pod("a", 5)], "10"))
    api.streams.append(Stream([event(EventType.ADDED, pod("b", 11))], "hang"))

    def broken(_obj: Any) -> None:
        raise RuntimeError("handler bug")

    informer = Informer(api, "pods")  # type: ignore[arg-type]
    informer.add_handler(Handlers(on_add=broken))
    await nursery.start(informer.run)
    await trio.sleep(1)
    assert sorted(informer.cache.keys()) == ["ns/a", "ns/b"]
    late = Calls()
    informer.add_handler(late.handlers())
    assert sorted(late.log) == [("add", "a", "5"), ("add", "b", "11")]


async def test_resync_calls_update_with_the_same_object(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([pod("a", 5)], "10"))
    informer = Informer(api, "pods", resync_period=60)  # type: ignore[arg-type]
    calls = Calls()
    informer.add_handler(calls.handlers())
    await nursery.start(informer.run)
    await trio.sleep(61)
    assert calls.log == [("add", "a", "5"), ("update", "a", "5")]


# ------------------------------------------------------------------ the scaffold


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((obj.metadata.name, type_, reason, message))


async def test_controller_waits_for_sync_and_steers_keys(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    api = FakeApi()
    api.lists.append(([pod("ok", 1), pod("later", 2), pod("flaky", 3), pod("bad", 4)], "10"))
    informer = Informer(api, "pods")  # type: ignore[arg-type]
    seen: list[tuple[str, float]] = []
    attempts = {"flaky": 0}

    async def reconcile(key: str) -> float | None:
        # The cache is complete whenever reconcile runs.
        assert len(informer.cache) == 4
        seen.append((key, trio.current_time()))
        name = key.split("/")[1]
        if name == "later" and sum(1 for k, _ in seen if k == key) == 1:
            return 30.0
        if name == "flaky":
            attempts["flaky"] += 1
            if attempts["flaky"] < 3:
                raise TransientError("not yet")
        if name == "bad":
            raise PermanentError("spec.image: cannot run", reason="InvalidImage")
        return None

    recorder = Recorder()
    controller = Controller("test", reconcile, subject=informer, recorder=recorder)  # type: ignore[arg-type]
    start = trio.current_time()
    nursery.start_soon(controller.run)
    await trio.sleep(1)
    assert seen == []  # not synced yet: nothing reconciled
    await nursery.start(informer.run)
    await trio.sleep(40)
    keys = [k for k, _ in seen]
    assert keys.count("ns/ok") == 1
    assert keys.count("ns/flaky") == 3  # two transient failures, then success
    assert keys.count("ns/bad") == 1  # permanent: not retried
    later = [t - start for k, t in seen if k == "ns/later"]
    assert len(later) == 2 and 30.0 <= later[1] - later[0] < 31.0  # requeued after 30 s
    assert recorder.events == [("bad", "Warning", "InvalidImage", "spec.image: cannot run")]


@pytest.mark.parametrize("workers", [1, 4])
async def test_one_key_never_reconciled_twice_at_once(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, workers: int
) -> None:
    api = FakeApi()
    api.lists.append(([pod("a", 1), pod("b", 2)], "10"))
    stream = [event(EventType.MODIFIED, pod("a", i)) for i in range(11, 30)]
    api.streams.append(Stream([0.05, *stream], "hang"))
    informer = Informer(api, "pods")  # type: ignore[arg-type]
    running: set[str] = set()
    overlaps = 0

    async def reconcile(key: str) -> None:
        nonlocal overlaps
        if key in running:
            overlaps += 1
        running.add(key)
        await trio.sleep(0.1)
        running.discard(key)

    controller = Controller("test", reconcile, subject=informer, workers=workers)  # type: ignore[arg-type]
    nursery.start_soon(controller.run)
    await nursery.start(informer.run)
    await trio.sleep(5)
    assert overlaps == 0
    # 19 quick updates of one object collapse into far fewer reconciles (de-duplication).
    assert controller.syncs < 19
