"""Failover across a 3-member store: reads, writes that were never sent, watch resume,
lease keep-alive. Each test gets a fresh cluster and SIGKILLs the member the client uses.

Tests that make clients themselves take ``rpc_loop`` as an argument: pytest-trio waits
only for fixtures a test takes as arguments, so ``usefixtures("rpc_loop")`` alone would let
the test open channels before the shared loop exists.
"""

from __future__ import annotations

import pytest
import trio

from raftstore.client import Client, Compacted, Event, open_client
from tests.raftstore.client.conftest import StoreCluster
from tests.support.processes import async_wait_for

pytestmark = [pytest.mark.usefixtures("rpc_loop"), pytest.mark.needs_etcd]


async def test_reads_and_unsent_writes_fail_over(rpc_loop: None, store3: StoreCluster) -> None:
    async with open_client(store3.endpoints) as client:
        await client.put("/failover/k", "before")
        assert client.current_endpoint == store3.endpoints[0]
        store3.kill(0)
        got = await client.get("/failover/k")
        assert got.kv is not None and got.kv.value == b"before"
        assert client.current_endpoint != store3.endpoints[0]
        assert len(await client.member_list()) == 3

    # A write to a dead endpoint never left the process, so it is retried elsewhere.
    async with open_client(store3.endpoints) as client:
        put = await client.put("/failover/k", "after")
        assert client.current_endpoint != store3.endpoints[0]
        got = await client.get("/failover/k")
        assert got.kv is not None and got.kv.mod_revision == put.revision


async def kill_and_wait_for_leader(
    store: StoreCluster, index: int, victim: Client, survivor: Client
) -> None:
    """SIGKILL member ``index`` (``victim``'s current endpoint); return once ``survivor``'s
    member follows another leader.

    Writes in flight while the cluster has no leader would time out (indeterminate), so
    the tests write only once a new leader is known.
    """
    assert victim.current_endpoint == store.endpoints[index]
    killed = (await victim.status()).header.member_id
    store.kill(index)

    async def new_leader() -> bool:
        return (await survivor.status()).leader not in (0, killed)

    await async_wait_for(new_leader, timeout=10, message="a new leader")


async def _collect(watch_events: list[Event], watch, count: int) -> None:  # type: ignore[no-untyped-def]
    async for batch in watch:
        watch_events.extend(batch.events)
        if len(watch_events) >= count:
            return


async def test_watch_resumes_without_loss_or_duplicates(
    rpc_loop: None, store3: StoreCluster
) -> None:
    prefix = "/resume/"
    async with (
        open_client(store3.endpoints) as watcher,
        open_client(store3.endpoints[1:]) as writer,
    ):
        written: list[tuple[bytes, bytes, int]] = []

        async def write(i: int) -> None:
            key, value = f"{prefix}k{i % 3}", f"v{i}"
            put = await writer.put(key, value)
            written.append((key.encode(), value.encode(), put.revision))

        events: list[Event] = []
        with trio.fail_after(30):
            async with watcher.watch(prefix, prefix=True) as watch:
                assert watch.endpoint == store3.endpoints[0]
                for i in range(5):
                    await write(i)
                await _collect(events, watch, 3)  # consume part of what is queued
                await kill_and_wait_for_leader(store3, 0, watcher, writer)
                for i in range(5, 15):
                    await write(i)
                await _collect(events, watch, 15)
                assert watch.resumes >= 1
                assert watch.endpoint != store3.endpoints[0]
        assert [(e.kv.key, e.kv.value, e.revision) for e in events] == written


async def test_watch_resume_into_compacted_history(rpc_loop: None, store3: StoreCluster) -> None:
    prefix = "/compacted/"
    async with (
        open_client(store3.endpoints) as watcher,
        open_client(store3.endpoints[1:]) as writer,
    ):
        with trio.fail_after(30):
            async with watcher.watch(prefix, prefix=True) as watch:
                await writer.put(prefix + "a", "1")
                first = await watch.next_batch()
                assert len(first.events) == 1
                await kill_and_wait_for_leader(store3, 0, watcher, writer)
                await writer.put(prefix + "a", "2")
                latest = await writer.put(prefix + "a", "3")
                await writer.compact(latest.revision)
                with pytest.raises(Compacted) as caught:
                    await watch.next_batch()
    assert caught.value.compact_revision == latest.revision


async def test_keepalive_survives_losing_its_endpoint(rpc_loop: None, store3: StoreCluster) -> None:
    async with open_client(store3.endpoints) as client:
        # longer than a leader failover (an election timeout of 1-2 s, then the client's
        # move to another member), as a lease must be to survive one
        lease = await client.grant(5)
        with trio.fail_after(30):
            async with client.keepalive(lease.id) as keeper:
                store3.kill(0)
                renewals = keeper.renewals

                async def renewed_elsewhere() -> bool:  # three renewals outlive the TTL
                    return keeper.renewals >= renewals + 3

                await async_wait_for(renewed_elsewhere, timeout=15, message="renewals")
                assert not keeper.lost.is_set()
        assert (await client.time_to_live(lease.id)).ttl > 0


async def test_use_leader_moves_calls_to_the_leader(rpc_loop: None, store3: StoreCluster) -> None:
    async def follower_first() -> list[str] | None:
        """The endpoints with a follower's first, once there is a leader."""
        for endpoint in store3.endpoints:
            async with open_client([endpoint]) as one:
                status = await one.status()
            if status.leader and status.header.member_id != status.leader:
                return [endpoint, *(e for e in store3.endpoints if e != endpoint)]
        return None

    found = await async_wait_for(follower_first, timeout=10, message="a leader")
    assert found is not None
    endpoints: list[str] = found
    async with open_client(endpoints) as client:
        assert client.current_endpoint == endpoints[0]
        assert await client.use_leader()
        assert client.current_endpoint != endpoints[0]
        status = await client.status()  # asked of the endpoint it moved to
        assert status.header.member_id == status.leader
        await client.put("/failover/leader", "v")
        got = await client.get("/failover/leader")
        assert got.kv is not None and got.kv.value == b"v"
