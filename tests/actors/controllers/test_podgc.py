"""Pod GC against a real API server on raftstore, and its ordering rule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.client import ApiClient, Conflict, NotFound
from actors.controllers import podgc
from actors.controllers.context import ControllerOptions
from proto.k8s import core_pb2
from tests.actors.controllers.conftest import Harness, make, pod, wait_until

OPTIONS = ControllerOptions(workers=2, orphaned_pod_quarantine=0.5)


class Nodes:
    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.prefix = f"n{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []

    async def add(self, suffix: str, ready: str = "True") -> str:
        node = make("Node", f"{self.prefix}-{suffix}")
        node.status.conditions.add(type="Ready", status=ready)
        await self.api.create(node)
        self.names.append(node.metadata.name)
        return str(node.metadata.name)

    async def cleanup(self) -> None:
        for name in self.names:
            try:
                await self.api.delete("Node", name)
            except NotFound:
                pass


@pytest.fixture
async def nodes(api: ApiClient) -> AsyncIterator[Nodes]:
    made = Nodes(api)
    try:
        yield made
    finally:
        await made.cleanup()


async def get(api: ApiClient, name: str, ns: str) -> Any | None:
    try:
        return await api.get("Pod", name, namespace=ns)
    except NotFound:
        return None


async def gone(api: ApiClient, name: str, ns: str) -> bool:
    return await get(api, name, ns) is None


async def bound(api: ApiClient, ns: str, name: str, node: str) -> Any:
    await api.create(pod(name, ns))
    return await api.bind(name, node, namespace=ns)


async def set_phase(api: ApiClient, ns: str, name: str, phase: str) -> None:
    while True:
        current: Any = await api.get("Pod", name, namespace=ns)
        current.status.phase = phase
        try:
            await api.update_status(current)
            return
        except Conflict:
            continue


async def test_pods_of_a_deleted_node_are_force_deleted_after_the_quarantine(
    api: ApiClient, ns: str, harness: Harness, nodes: Nodes
) -> None:
    await harness.start(podgc.new_controller, options=OPTIONS)
    doomed = await nodes.add("a")
    kept = await nodes.add("b")
    await bound(api, ns, "orphan", doomed)
    await bound(api, ns, "fine", kept)
    await api.delete("Node", doomed)
    start = datetime.now(UTC)
    await wait_until(lambda: gone(api, "orphan", ns))
    assert datetime.now(UTC) - start >= timedelta(seconds=0.5)
    assert await get(api, "fine", ns) is not None


async def test_terminating_pods_on_an_unreachable_node_go_after_their_grace_period(
    api: ApiClient, ns: str, harness: Harness, nodes: Nodes
) -> None:
    await harness.start(podgc.new_controller, options=OPTIONS)
    lost = await nodes.add("lost", ready="Unknown")
    alive = await nodes.add("alive", ready="False")  # not ready, but its agent answers
    await bound(api, ns, "stuck", lost)
    await bound(api, ns, "stopping", alive)
    deleted = await api.delete("Pod", "stuck", namespace=ns, grace_period_seconds=1)
    await api.delete("Pod", "stopping", namespace=ns, grace_period_seconds=1)
    assert deleted.pending
    deadline = deleted.object.metadata.deletion_timestamp.ToDatetime(tzinfo=UTC)

    await wait_until(lambda: gone(api, "stuck", ns))
    assert datetime.now(UTC) >= deadline
    # The pod whose node agent is alive is left for that agent.
    stopping = await get(api, "stopping", ns)
    assert stopping is not None and stopping.metadata.HasField("deletion_timestamp")


async def test_terminated_pods_beyond_the_threshold_go_oldest_first(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(
        podgc.new_controller, options=ControllerOptions(terminated_pod_gc_threshold=2)
    )
    for i in range(4):
        await api.create(pod(f"done-{i}", ns))
    await api.create(pod("running", ns))
    for i in range(4):
        await set_phase(api, ns, f"done-{i}", "Succeeded" if i % 2 else "Failed")

    async def two_left() -> bool:
        return [await get(api, f"done-{i}", ns) is None for i in range(4)] == [
            True,
            True,
            False,
            False,
        ]

    await wait_until(two_left)
    assert await get(api, "running", ns) is not None


def test_collection_order_evicted_first_then_oldest():
    def terminated(name: str, seconds: int, reason: str = "") -> Any:
        p = core_pb2.Pod()
        p.metadata.name = name
        p.metadata.creation_timestamp.FromSeconds(seconds)
        p.status.phase = "Failed"
        p.status.reason = reason
        return p

    pods = [terminated("new", 30), terminated("old", 10), terminated("evicted", 50, "Evicted")]
    assert [p.metadata.name for p in podgc.gc_order(pods)] == ["evicted", "old", "new"]


def test_unreachable_means_unknown_ready_or_the_unreachable_taint():
    node = core_pb2.Node()
    node.status.conditions.add(type="Ready", status="False")
    assert not podgc.node_unreachable(node)
    node.spec.taints.add(key="node.kubernetes.io/unreachable", effect="NoSchedule")
    assert podgc.node_unreachable(node)
    del node.spec.taints[:]
    node.status.conditions[0].status = "Unknown"
    assert podgc.node_unreachable(node)
