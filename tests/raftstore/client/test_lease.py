"""Leases: grant, TTL queries, attached keys, revoke, keep-alive, expiry and loss."""

from __future__ import annotations

import pytest
import trio

from raftstore.client import Client, LeaseLost, LeaseNotFound
from tests.support.processes import async_wait_for

pytestmark = [pytest.mark.usefixtures("rpc_loop"), pytest.mark.needs_etcd]


async def test_grant_ttl_keys_revoke(client: Client, prefix: str) -> None:
    lease = await client.grant(60)
    assert lease.ttl == 60 and lease.id != 0
    assert lease.id in await client.leases()
    await client.put(prefix + "a", "1", lease=lease.id)
    await client.put(prefix + "b", "2", lease=lease.id)
    assert (await client.get(prefix + "a")).kvs[0].lease == lease.id

    info = await client.time_to_live(lease.id, keys=True)
    assert info.id == lease.id and info.granted_ttl == 60 and 0 < info.ttl <= 60
    assert sorted(info.keys) == [(prefix + "a").encode(), (prefix + "b").encode()]
    assert (await client.time_to_live(lease.id)).keys == ()

    await client.revoke(lease.id)
    assert (await client.get(prefix, prefix=True, count_only=True)).count == 0
    assert (await client.time_to_live(lease.id)).ttl == -1
    assert lease.id not in await client.leases()
    with pytest.raises(LeaseNotFound):
        await client.revoke(lease.id)


async def test_grant_with_chosen_id(client: Client) -> None:
    lease = await client.grant(30, id=0x1234ABCD)
    assert lease.id == 0x1234ABCD
    await client.revoke(lease.id)


async def test_expiry_deletes_keys(client: Client, prefix: str) -> None:
    lease = await client.grant(1)  # the store may round a tiny TTL up (etcd: to 2 s here)
    await client.put(prefix + "k", "v", lease=lease.id)

    async def gone() -> bool:
        return (await client.get(prefix + "k")).count == 0

    await async_wait_for(gone, timeout=lease.ttl + 10, message="leased key to expire")
    assert (await client.time_to_live(lease.id)).ttl == -1


async def test_keepalive_outlives_the_ttl(client: Client, prefix: str) -> None:
    lease = await client.grant(2)
    await client.put(prefix + "k", "v", lease=lease.id)
    async with client.keepalive(lease.id) as keeper:
        assert keeper.renewals == 1 and keeper.ttl == lease.ttl
        # Keep the lease across more than one TTL; renewals prove the task runs.

        async def renewed_four_times() -> bool:
            return keeper.renewals >= 4

        await async_wait_for(renewed_four_times, timeout=10, message="four renewals")
        assert not keeper.lost.is_set()
    assert (await client.get(prefix + "k")).count == 1
    await client.revoke(lease.id)


async def test_keepalive_of_unknown_lease_fails_at_once(client: Client) -> None:
    with pytest.raises(LeaseNotFound):
        async with client.keepalive(0x7EADBEEF):
            pytest.fail("the block must not run")


async def test_revoked_lease_is_lost_and_cancels_the_block(client: Client) -> None:
    lease = await client.grant(3)
    reached_end = False
    with pytest.raises(LeaseLost) as caught, trio.fail_after(10):
        async with client.keepalive(lease.id) as keeper:
            await client.revoke(lease.id)
            await keeper.lost.wait()
            await trio.sleep_forever()  # cancelled by the loss
            reached_end = True
    assert not reached_end
    assert caught.value.lease_id == lease.id


async def test_lease_context_grants_and_revokes(client: Client, prefix: str) -> None:
    async with client.lease(10) as keeper:
        await client.put(prefix + "k", "v", lease=keeper.id)
        assert (await client.time_to_live(keeper.id)).ttl > 0
    assert (await client.time_to_live(keeper.id)).ttl == -1
    assert (await client.get(prefix + "k")).count == 0


async def test_body_errors_pass_through_unwrapped(client: Client) -> None:
    with pytest.raises(KeyError):
        async with client.lease(10):
            raise KeyError("mine")
