"""The watch cache's window, cursors and bookmarks, fed batches directly (no store)."""

from __future__ import annotations

import pytest
import trio

from actors.apiserver import storage
from actors.apiserver.watch_cache import EventKind, TooOld, WatchCache
from proto.k8s import kinds
from raftstore.client import Event, EventType, Header, KeyValue, WatchBatch

INFO = kinds.by_kind("ConfigMap")


def kv(name: str, revision: int, created: int | None = None) -> KeyValue:
    cm = INFO.new()
    cm.metadata.name = name
    cm.metadata.namespace = "default"
    cm.data["rev"] = str(revision)
    return KeyValue(
        key=f"/registry/configmaps/default/{name}".encode(),
        value=storage.encode(cm),
        create_revision=created or revision,
        mod_revision=revision,
        version=1,
        lease=0,
    )


def batch(*events: Event, revision: int | None = None) -> WatchBatch:
    rev = revision if revision is not None else events[-1].revision
    return WatchBatch(header=Header(0, 0, rev, 0), events=events)


def put(name: str, revision: int) -> Event:
    return Event(type=EventType.PUT, kv=kv(name, revision), prev_kv=None)


def delete(name: str, revision: int) -> Event:
    return Event(type=EventType.DELETE, kv=kv(name, revision), prev_kv=None)


def cache(window: int = 100) -> WatchCache:
    c = WatchCache(INFO, client=None, window=window)  # type: ignore[arg-type]
    c.load([kv("a", 5)], 10)
    return c


async def test_events_and_state():
    c = cache()
    c.apply(batch(put("b", 11)))
    c.apply(batch(put("a", 12)))
    c.apply(batch(delete("b", 13)))
    assert [o.metadata.name for o in c.objects()] == ["a"]
    assert c.revision == 13
    _, w = c.watch(10)
    events = await w.next(timeout=1)
    assert [(e.kind, e.obj.metadata.name, e.revision) for e in events] == [
        (EventKind.ADDED, "b", 11),
        (EventKind.MODIFIED, "a", 12),
        (EventKind.DELETED, "b", 13),
    ]
    assert events[1].prev.metadata.resource_version == "5"
    assert events[2].obj.metadata.resource_version == "13"  # the deletion's revision


async def test_watch_from_now_snapshots_then_follows():
    c = cache()
    snapshot, w = c.watch(None)
    assert [o.metadata.name for o in snapshot] == ["a"]
    c.apply(batch(put("b", 11)))
    assert [e.obj.metadata.name for e in await w.next(timeout=1)] == ["b"]


async def test_window_evicts_whole_revisions_and_too_old(autojump_clock):
    c = cache(window=2)
    _, slow = c.watch(10)
    c.apply(batch(put("b", 11)))
    c.apply(batch(put("c", 12), put("d", 12)))
    c.apply(batch(put("e", 13)))
    assert c.oldest == 12
    with pytest.raises(TooOld, match="too old resource version: 10"):
        await slow.next(timeout=1)
    with pytest.raises(TooOld, match=r"the oldest available is 12"):
        c.watch(11)
    _, ok = c.watch(12)
    assert [e.obj.metadata.name for e in await ok.next(timeout=1)] == ["e"]


async def test_relist_ends_every_watcher():
    c = cache()
    _, w = c.watch(10)
    c.load([kv("z", 20)], 20)
    with pytest.raises(TooOld):
        await w.next(timeout=1)


async def test_timeout_returns_empty_and_bookmark_revision(autojump_clock):
    c = cache()
    _, w = c.watch(10)
    start = trio.current_time()
    assert await w.next(timeout=3) == []
    assert trio.current_time() - start == 3
    assert w.revision == 10
    c.apply(batch(revision=15))  # a progress notification
    assert await w.next(timeout=3) == []
    assert w.revision == 15


async def test_future_resource_version_skips_older_events():
    c = cache()
    _, w = c.watch(12)
    c.apply(batch(put("b", 11)))
    c.apply(batch(put("c", 13)))
    assert [e.obj.metadata.name for e in await w.next(timeout=1)] == ["c"]


async def test_waiting_watcher_wakes_on_an_event(autojump_clock):
    c = cache()
    _, w = c.watch(10)
    got = []
    async with trio.open_nursery() as nursery:

        async def wait() -> None:
            got.extend(await w.next(timeout=100))

        nursery.start_soon(wait)
        await trio.sleep(1)
        c.apply(batch(put("b", 11)))
    assert [e.revision for e in got] == [11]
    assert trio.current_time() == pytest.approx(1)
