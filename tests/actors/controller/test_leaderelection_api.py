"""Leader election through the real API server (in-process) on a real raftstore member.

Short timings (lease 1.5 s, written as 2 s; renew deadline 1 s; retry 0.2 s), real time.
Each test contends for its own Lease in ``kube-system``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, open_api_client
from actors.controller.leaderelection import (
    LeaderElectionConfig,
    LeaderElector,
    run_leader_elected,
)
from proto import rpc
from proto.k8s import codec, coordination_pb2
from tests.support.processes import async_wait_for

LEASE, RENEW, RETRY = 1.5, 1.0, 0.2


async def start_apiserver(nursery: trio.Nursery, store: tuple[str, ...]) -> rpc.Server:
    server: rpc.Server = await nursery.start(partial(run_apiserver, etcd_endpoints=store))
    return server


@pytest.fixture
async def api(nursery: trio.Nursery, store: tuple[str, ...]) -> AsyncIterator[ApiClient]:
    server = await start_apiserver(nursery, store)
    async with open_api_client(server.address, timeout=5) as client:
        yield client


@pytest.fixture
def lock_name() -> str:
    return f"le-{uuid.uuid4().hex[:10]}"


@dataclass
class Acting:
    """Who acts now; fails the test if two electors ever act at once."""

    now: set[str] = field(default_factory=set)
    began: dict[str, float] = field(default_factory=dict)

    def leading(self, name: str) -> Callable[[], Awaitable[None]]:
        async def leading() -> None:
            self.now.add(name)
            assert len(self.now) == 1, f"{sorted(self.now)} act at once"
            self.began[name] = trio.current_time()
            try:
                await trio.sleep_forever()
            finally:
                self.now.discard(name)

        return leading


async def start_elector(
    nursery: trio.Nursery,
    api: ApiClient,
    lock_name: str,
    identity: str,
    acting: Acting,
) -> tuple[LeaderElector, trio.CancelScope]:
    scope = trio.CancelScope()
    config = LeaderElectionConfig(
        lock_name=lock_name,
        identity=identity,
        lease_duration=LEASE,
        renew_deadline=RENEW,
        retry_period=RETRY,
    )

    async def run(task_status: trio.TaskStatus[LeaderElector]) -> None:
        with scope:
            await run_leader_elected(api, config, acting.leading(identity), task_status=task_status)

    elector: LeaderElector = await nursery.start(run)
    return elector, scope


async def get_lease(api: ApiClient, name: str) -> coordination_pb2.Lease:
    return await api.get(coordination_pb2.Lease, name, namespace="kube-system")


async def test_the_lease_has_kubernetes_fields_and_a_stopped_leader_hands_over_at_once(
    api: ApiClient, lock_name: str, nursery: trio.Nursery
) -> None:
    acting = Acting()
    before = dt.datetime.now(dt.UTC)
    a, a_scope = await start_elector(nursery, api, lock_name, "a", acting)
    b, _ = await start_elector(nursery, api, lock_name, "b", acting)
    assert a.is_leader and not b.is_leader and b.leader == "a"
    await async_wait_for(lambda: acting.now == {"a"}, timeout=5, message="a acting")

    lease = await get_lease(api, lock_name)
    doc = codec.encode(lease)
    assert doc["apiVersion"] == "coordination.k8s.io/v1" and doc["kind"] == "Lease"
    spec = doc["spec"]
    assert sorted(spec) == [
        "acquireTime",
        "holderIdentity",
        "leaseDurationSeconds",
        "leaseTransitions",
        "renewTime",
    ]
    assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == ("a", 2)
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"].endswith("Z") and spec["renewTime"].endswith("Z")
    acquired = lease.spec.acquire_time.ToDatetime(tzinfo=dt.UTC)
    assert before - dt.timedelta(seconds=1) <= acquired <= dt.datetime.now(dt.UTC)

    # the leader renews: renewTime moves, acquireTime stays
    first_renew = lease.spec.renew_time.ToDatetime(tzinfo=dt.UTC)

    async def renewed() -> coordination_pb2.Lease | None:
        current = await get_lease(api, lock_name)
        return current if current.spec.renew_time.ToDatetime(tzinfo=dt.UTC) > first_renew else None

    renewed_lease: coordination_pb2.Lease | None = await async_wait_for(
        renewed, timeout=5, message="a renewal"
    )
    assert renewed_lease is not None
    assert renewed_lease.spec.acquire_time == lease.spec.acquire_time
    assert renewed_lease.spec.holder_identity == "a"

    # a clean shutdown releases the lease: b leads well within the lease duration
    stopped = trio.current_time()
    a_scope.cancel()
    await async_wait_for(lambda: b.is_leader, timeout=5, message="b to lead")
    assert trio.current_time() - stopped < LEASE
    assert acting.now == {"b"} and b.leader == "b" and not a.is_leader
    lease = await get_lease(api, lock_name)
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1


async def test_labels_set_on_the_lease_survive_renewals(
    api: ApiClient, lock_name: str, nursery: trio.Nursery
) -> None:
    elector, _ = await start_elector(nursery, api, lock_name, "a", Acting())
    assert elector.is_leader
    await api.patch_merge(
        "leases", lock_name, {"metadata": {"labels": {"team": "sched"}}}, namespace="kube-system"
    )
    patched = await get_lease(api, lock_name)

    async def renewed_after_patch() -> coordination_pb2.Lease | None:
        current = await get_lease(api, lock_name)
        newer = int(current.metadata.resource_version) > int(patched.metadata.resource_version)
        return current if newer else None

    lease: coordination_pb2.Lease | None = await async_wait_for(
        renewed_after_patch, timeout=5, message="a renewal"
    )
    assert lease is not None and lease.spec.holder_identity == "a"
    assert dict(lease.metadata.labels) == {"team": "sched"}


async def test_a_leader_cut_off_from_the_api_stops_before_the_other_takes_over(
    store: tuple[str, ...], lock_name: str, nursery: trio.Nursery
) -> None:
    """a talks to its own API server, which goes away; b's keeps working."""
    acting = Acting()
    a_server_scope = trio.CancelScope()

    async def a_server(task_status: trio.TaskStatus[rpc.Server]) -> None:
        with a_server_scope:
            await run_apiserver(etcd_endpoints=store, task_status=task_status)

    a_address = (await nursery.start(a_server)).address
    b_address = (await start_apiserver(nursery, store)).address
    async with (
        open_api_client(a_address, timeout=0.5) as a_api,
        open_api_client(b_address, timeout=5) as b_api,
        trio.open_nursery() as electors,
    ):
        a, _ = await start_elector(electors, a_api, lock_name, "a", acting)
        b, _ = await start_elector(electors, b_api, lock_name, "b", acting)
        assert a.is_leader
        await async_wait_for(lambda: acting.now == {"a"}, timeout=5, message="a acting")

        cut = trio.current_time()
        a_server_scope.cancel()
        await async_wait_for(lambda: "a" not in acting.now, timeout=5, message="a stops")
        stopped = trio.current_time()
        await async_wait_for(lambda: acting.now == {"b"}, timeout=10, message="b acting")
        # a stops within renew deadline + retry of the cut; b starts only after that
        assert stopped - cut <= RENEW + RETRY + 0.5
        assert acting.began["b"] > stopped
        assert acting.began["b"] - cut >= RENEW
        assert not a.is_leader and b.is_leader
        electors.cancel_scope.cancel()
