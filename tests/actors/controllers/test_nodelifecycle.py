"""The node lifecycle controller against a real API server on raftstore.

The tests play the node agents: they create Node objects with a Ready condition and a
Lease in ``kube-node-lease``, renew the leases of the nodes that are "alive", and post
Ready=True when a node comes back. Grace periods are about a second.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from actors.client import ApiClient, Conflict, NotFound
from actors.controllers import nodelifecycle
from actors.controllers.context import ControllerOptions
from actors.controllers.nodelifecycle import NOT_READY, UNREACHABLE
from tests.actors.controllers.conftest import Harness, make, pod, wait_until

OPTIONS = ControllerOptions(
    workers=2,
    node_monitor_grace_period=1.0,
    node_startup_grace_period=1.0,
    node_monitor_period=0.1,
    node_eviction_rate=10.0,
)
RENEW_EVERY = 0.2


class Agents:
    """Fake node agents: Node + Lease per node, leases renewed while a node is alive."""

    def __init__(self, api: ApiClient, nursery: trio.Nursery) -> None:
        self.api = api
        self.prefix = f"n{uuid.uuid4().hex[:6]}"
        self.alive: set[str] = set()
        self.names: list[str] = []
        nursery.start_soon(self._renew_loop)

    async def add(self, suffix: str, *, alive: bool = True) -> str:
        name = f"{self.prefix}-{suffix}"
        node = make("Node", name)
        ready = node.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
        ready.last_heartbeat_time.GetCurrentTime()
        ready.last_transition_time.GetCurrentTime()
        await self.api.create(node)
        lease = make("Lease", name, nodelifecycle.LEASE_NAMESPACE)
        lease.spec.holder_identity = name
        lease.spec.lease_duration_seconds = 40
        lease.spec.renew_time.GetCurrentTime()
        await self.api.create(lease)
        self.names.append(name)
        if alive:
            self.alive.add(name)
        return name

    async def renew(self, name: str) -> None:
        while True:
            lease: Any = await self.api.get("Lease", name, namespace=nodelifecycle.LEASE_NAMESPACE)
            lease.spec.renew_time.GetCurrentTime()
            try:
                await self.api.update(lease)
                return
            except Conflict:
                continue

    async def _renew_loop(self) -> None:
        while True:
            for name in sorted(self.alive):
                await self.renew(name)
            await trio.sleep(RENEW_EVERY)

    async def come_back(self, name: str) -> None:
        """What an agent does on return: renew, then post Ready=True."""
        await self.renew(name)
        self.alive.add(name)
        while True:
            node: Any = await self.api.get("Node", name)
            for condition in node.status.conditions:
                if condition.type == "Ready":
                    condition.status = "True"
                    condition.reason = "KubeletReady"
                    condition.message = ""
                    condition.last_heartbeat_time.GetCurrentTime()
                    condition.last_transition_time.GetCurrentTime()
            try:
                await self.api.update_status(node)
                return
            except Conflict:
                continue

    async def cleanup(self) -> None:
        self.alive.clear()
        for name in self.names:
            for kind, ns in (("Node", ""), ("Lease", nodelifecycle.LEASE_NAMESPACE)):
                try:
                    await self.api.delete(kind, name, namespace=ns)
                except NotFound:
                    pass


@pytest.fixture
async def agents(api: ApiClient, nursery: trio.Nursery) -> AsyncIterator[Agents]:
    fake = Agents(api, nursery)
    try:
        yield fake
    finally:
        await fake.cleanup()


async def bound_pod(
    api: ApiClient, ns: str, name: str, node: str, toleration_seconds: int | None
) -> Any:
    p = pod(name, ns)
    if toleration_seconds is not None:
        for key in (NOT_READY, UNREACHABLE):
            p.spec.tolerations.add(
                key=key,
                operator="Exists",
                effect="NoExecute",
                toleration_seconds=toleration_seconds,
            )
    await api.create(p)
    await api.bind(name, node, namespace=ns)
    current: Any = await api.get("Pod", name, namespace=ns)
    current.status.phase = "Running"
    current.status.conditions.add(type="Ready", status="True")
    return await api.update_status(current)


def taints(node: Any) -> set[tuple[str, str]]:
    return {(t.key, t.effect) for t in node.spec.taints}


def ready_status(node: Any) -> str | None:
    return next((c.status for c in node.status.conditions if c.type == "Ready"), None)


async def get(api: ApiClient, kind: str, name: str, ns: str = "") -> Any | None:
    try:
        return await api.get(kind, name, namespace=ns)
    except NotFound:
        return None


async def evicted(api: ApiClient, ns: str, name: str) -> Any | None:
    p = await get(api, "Pod", name, ns)
    return p if p is not None and p.metadata.HasField("deletion_timestamp") else None


def deleted_at(p: Any) -> datetime:
    """When the pod was deleted (its deletionTimestamp is that plus the grace period)."""
    stamp: datetime = p.metadata.deletion_timestamp.ToDatetime(tzinfo=UTC)
    return stamp - timedelta(seconds=p.metadata.deletion_grace_period_seconds)


async def test_a_lost_node_is_marked_tainted_and_emptied_then_untainted_on_return(
    api: ApiClient, ns: str, harness: Harness, agents: Agents
) -> None:
    healthy = await agents.add("a")
    lost = await agents.add("b")
    await bound_pod(api, ns, "intolerant", lost, toleration_seconds=0)
    await bound_pod(api, ns, "patient", lost, toleration_seconds=2)
    await bound_pod(api, ns, "elsewhere", healthy, toleration_seconds=0)
    await harness.start(nodelifecycle.new_controller, options=OPTIONS)

    agents.alive.discard(lost)

    async def marked() -> Any:
        node = await api.get("Node", lost)
        if ready_status(node) == "Unknown" and (UNREACHABLE, "NoExecute") in taints(node):
            return node
        return None

    node = await wait_until(marked, timeout=10)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert (ready.reason, ready.message) == (
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    assert (UNREACHABLE, "NoSchedule") in taints(node)
    added = next(
        t.time_added.ToDatetime(tzinfo=UTC) for t in node.spec.taints if t.effect == "NoExecute"
    )

    first = await wait_until(lambda: evicted(api, ns, "intolerant"))
    patient = await get(api, "Pod", "patient", ns)
    assert patient is not None and not patient.metadata.HasField("deletion_timestamp")
    assert deleted_at(first) - added < timedelta(seconds=1.5)

    # Its pods are marked not ready (for the Endpoints) while they wait.
    async def patient_not_ready() -> bool:
        p = await get(api, "Pod", "patient", ns)
        return p is not None and ready_status(p) == "False"

    await wait_until(patient_not_ready)

    second = await wait_until(lambda: evicted(api, ns, "patient"), timeout=10)
    assert deleted_at(second) >= added + timedelta(seconds=2)
    assert deleted_at(second) - added < timedelta(seconds=4)

    healthy_node = await api.get("Node", healthy)
    assert ready_status(healthy_node) == "True" and not taints(healthy_node)
    elsewhere = await get(api, "Pod", "elsewhere", ns)
    assert elsewhere is not None and not elsewhere.metadata.HasField("deletion_timestamp")

    # The agent returns: the taints go.
    await agents.come_back(lost)

    async def untainted() -> bool:
        return not taints(await api.get("Node", lost))

    await wait_until(untainted, timeout=10)


async def test_no_eviction_when_every_node_is_lost(
    api: ApiClient, ns: str, harness: Harness, agents: Agents
) -> None:
    first = await agents.add("a", alive=False)
    second = await agents.add("b", alive=False)
    await bound_pod(api, ns, "p1", first, toleration_seconds=0)
    await bound_pod(api, ns, "p2", second, toleration_seconds=0)
    await harness.start(nodelifecycle.new_controller, options=OPTIONS)

    async def both_unknown() -> bool:
        nodes = [await api.get("Node", n) for n in (first, second)]
        return all(
            ready_status(n) == "Unknown" and (UNREACHABLE, "NoSchedule") in taints(n) for n in nodes
        )

    await wait_until(both_unknown, timeout=10)
    # Watch for a while (many monitor passes): no eviction taint, no eviction.
    deadline = trio.current_time() + 1.5
    while trio.current_time() < deadline:
        for name in (first, second):
            assert (UNREACHABLE, "NoExecute") not in taints(await api.get("Node", name))
        for p in ("p1", "p2"):
            assert await evicted(api, ns, p) is None
        await trio.sleep(0.1)

    # One node returns: this was no partition, the other node really is lost: it is
    # tainted and its pod evicted.
    await agents.come_back(first)
    await wait_until(lambda: evicted(api, ns, "p2"), timeout=10)
    assert await evicted(api, ns, "p1") is None


async def test_a_not_ready_node_gets_the_not_ready_taints(
    api: ApiClient, ns: str, harness: Harness, agents: Agents
) -> None:
    await agents.add("a")
    sick = await agents.add("b")
    await harness.start(nodelifecycle.new_controller, options=OPTIONS)
    node: Any = await api.get("Node", sick)
    for condition in node.status.conditions:
        if condition.type == "Ready":
            condition.status = "False"
            condition.reason = "KubeletNotReady"
            condition.last_heartbeat_time.GetCurrentTime()
    await api.update_status(node)

    async def tainted() -> bool:
        return taints(await api.get("Node", sick)) == {
            (NOT_READY, "NoSchedule"),
            (NOT_READY, "NoExecute"),
        }

    await wait_until(tainted, timeout=10)
    # Its agent still renews the lease, so it is not unreachable.
    assert ready_status(await api.get("Node", sick)) == "False"
