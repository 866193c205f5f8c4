"""Watches: from a revision, prefixes, prev_kv, filters, cancellation, compaction."""

from __future__ import annotations

import pytest
import trio

from raftstore.client import (
    Client,
    Compacted,
    Event,
    EventType,
    Watch,
    WatchFilter,
    op_put,
)

pytestmark = [pytest.mark.usefixtures("rpc_loop"), pytest.mark.needs_etcd]


async def take(watch: Watch, count: int, *, timeout: float = 10) -> list[Event]:
    """The next ``count`` events (batches flattened), or fail after ``timeout``."""
    events: list[Event] = []
    with trio.fail_after(timeout):
        async for batch in watch:
            events.extend(batch.events)
            if len(events) >= count:
                break
    assert len(events) == count, events
    return events


def summary(events: list[Event]) -> list[tuple[str, bytes, bytes]]:
    return [(e.type.name, e.kv.key.rsplit(b"/", 1)[-1], e.kv.value) for e in events]


async def test_watch_from_revision_sees_history_then_live(client: Client, prefix: str) -> None:
    first = await client.put(prefix + "k", "1")
    await client.put(prefix + "k", "2")
    async with client.watch(prefix + "k", start_revision=first.revision) as watch:
        await client.delete(prefix + "k")
        await client.put(prefix + "k", "3")
        events = await take(watch, 4)
    assert summary(events) == [
        ("PUT", b"k", b"1"),
        ("PUT", b"k", b"2"),
        ("DELETE", b"k", b""),
        ("PUT", b"k", b"3"),
    ]
    revisions = [e.revision for e in events]
    assert revisions == sorted(revisions) and revisions[0] == first.revision
    assert events[3].kv.version == 1  # recreated after the delete


async def test_watch_from_now_and_prefix(client: Client, prefix: str) -> None:
    await client.put(prefix + "before", "old")
    async with client.watch(prefix, prefix=True) as watch:
        assert watch.next_revision > 0
        await client.put(prefix + "a", "1")
        await client.put(prefix.rstrip("/") + "-outside", "x")
        await client.put(prefix + "sub/b", "2")
        events = await take(watch, 2)
    assert summary(events) == [("PUT", b"a", b"1"), ("PUT", b"b", b"2")]


async def test_txn_events_share_a_revision_and_a_batch(client: Client, prefix: str) -> None:
    async with client.watch(prefix, prefix=True) as watch:
        result = await client.txn(success=[op_put(prefix + "x", "1"), op_put(prefix + "y", "2")])
        with trio.fail_after(10):
            batch = await watch.next_batch()
    assert [e.revision for e in batch.events] == [result.revision] * 2


async def test_prev_kv_and_filters(client: Client, prefix: str) -> None:
    key = prefix + "k"
    await client.put(key, "1")
    async with (
        client.watch(key, prev_kv=True) as with_prev,
        client.watch(key, filters=[WatchFilter.NO_PUT]) as deletes_only,
        client.watch(key, filters=[WatchFilter.NO_DELETE]) as puts_only,
    ):
        await client.put(key, "2")
        await client.delete(key)
        await client.put(key, "3")
        prev = await take(with_prev, 3)
        assert [e.prev_kv.value if e.prev_kv else None for e in prev] == [b"1", b"2", None]
        assert [e.type for e in await take(deletes_only, 1)] == [EventType.DELETE]
        assert summary(await take(puts_only, 2)) == [("PUT", b"k", b"2"), ("PUT", b"k", b"3")]


async def test_leaving_the_block_cancels_the_watch(client: Client, prefix: str) -> None:
    async with client.watch(prefix, prefix=True) as watch:
        await client.put(prefix + "a", "1")
        await take(watch, 1)
    assert watch.endpoint is None  # the stream is closed
    with pytest.raises(StopAsyncIteration):
        await watch.__anext__()


async def test_cancel_scope_ends_iteration(client: Client, prefix: str) -> None:
    with trio.move_on_after(0.3) as scope:
        async with client.watch(prefix, prefix=True) as watch:
            async for _ in watch:
                pytest.fail("no events expected")
    assert scope.cancelled_caught


async def test_compacted_start_revision(client: Client, prefix: str) -> None:
    old = await client.put(prefix + "k", "1")
    new = await client.put(prefix + "k", "2")
    await client.compact(new.revision)
    async with client.watch(prefix + "k", start_revision=old.revision) as watch:
        with pytest.raises(Compacted) as caught, trio.fail_after(10):
            await watch.next_batch()
    assert caught.value.compact_revision == new.revision


async def test_progress_notify_keeps_events_flowing(client: Client, prefix: str) -> None:
    async with client.watch(prefix, prefix=True, progress_notify=True) as watch:
        await client.put(prefix + "a", "1")
        assert summary(await take(watch, 1)) == [("PUT", b"a", b"1")]
