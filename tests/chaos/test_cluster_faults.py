"""Faults in a whole cluster (stores, two API servers, two schedulers, two controller
managers, three nodes) started once for this module by ``raftsman up --no-restart``:
what is killed stays dead, so every recovery here is the cluster's own doing.

The scenarios run in file order on the same cluster and a Deployment of three pods; each
first waits for the Deployment to be whole again, so each also runs alone (``-k``):

1. a pod's process is killed: the node agent restarts the container;
2. the scheduler and controller-manager leaders are killed: the standbys take over, and
   a scale-up shows both at work;
3. a node agent is paused until its pods were replaced elsewhere, then resumed: the
   pods it still ran are stopped, and no pod ever ran on two nodes;
4. a node agent is killed for good: its pods run on the other nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import trio

from actors.client import ApiClient, open_api_client
from chaos.cluster import Cluster, Selector
from chaos.faults import Kill, Pause
from chaos.invariants import PodPlacement, deployment_pods, orphans
from proto import rpc
from tests.chaos.conftest import Launched, require
from tests.support.processes import async_wait_for

T = TypeVar("T")

pytestmark = pytest.mark.chaos

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleeper
spec:
  replicas: 3
  selector:
    matchLabels: {app: sleeper}
  template:
    metadata:
      labels: {app: sleeper}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: python:3-slim
        command: ["python3", "-c", "import time\\nwhile True: time.sleep(1)"]
"""
RECOVERY = 45.0


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    require("scheduler", "controller-manager", "node-agent")
    root = tmp_path_factory.mktemp("chaos-cluster")
    launched = Launched(root / "cluster")
    try:
        launched.up(
            "--stores=3",
            "--apiservers=2",
            "--schedulers=2",
            "--controller-managers=2",
            "--nodes=3",
            "--no-restart",
        )
        manifest = root / "sleeper.yaml"
        manifest.write_text(DEPLOYMENT)
        launched.kubectl("apply", "-f", str(manifest))
        yield launched
    finally:
        launched.cleanup()


@pytest.fixture
async def api(whole: Launched) -> AsyncIterator[ApiClient]:
    async with open_api_client(whole.cluster.api_endpoints(), timeout=5.0) as client:
        yield client


def polled(predicate: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T | None]]:
    """``predicate``, with an API server that is slow or unavailable for a moment (a
    loaded machine, a fault) counting as "not yet" rather than as a failure."""

    async def attempt() -> T | None:
        try:
            return await predicate()
        except (rpc.Unavailable, rpc.DeadlineExceeded):
            return None

    return attempt


def nodes(cluster: Cluster) -> dict[str, str]:
    return {r.name: r.data for r in cluster.records("node-agent") if r.data}


async def whole_again(api: ApiClient, launched: Launched) -> list[Any]:
    """Wait until the Deployment has all its pods Running and Ready; those pods."""

    async def ready() -> list[Any] | None:
        desired, running = await deployment_pods(api, "default", "sleeper")
        return running if len(running) == desired else None

    try:
        pods: list[Any] = await async_wait_for(
            polled(ready), timeout=RECOVERY, interval=0.2, message="the Deployment whole"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{launched.logs()}") from None
    return pods


async def test_killed_pod_process_is_restarted(whole: Launched, api: ApiClient) -> None:
    pods = await whole_again(api, whole)
    pod = pods[0]
    name = pod.metadata.name
    before = pod.status.container_statuses[0].restart_count
    [process] = await whole.cluster.select(Selector(role="pod", name=f"default/{name}"))
    await Kill().start(whole.cluster, [process])

    async def restarted() -> bool:
        now = await api.get("Pod", name, namespace="default")
        statuses = now.status.container_statuses  # type: ignore[attr-defined]
        return bool(statuses) and statuses[0].restart_count > before and statuses[0].ready

    await async_wait_for(polled(restarted), timeout=RECOVERY, interval=0.2, message="the restart")
    [again] = await whole.cluster.select(Selector(role="pod", name=f"default/{name}"))
    assert again.pid != process.pid
    assert not process.alive


async def test_killed_control_plane_leaders_are_replaced_by_standbys(
    whole: Launched, api: ApiClient
) -> None:
    await whole_again(api, whole)
    cluster = whole.cluster
    for role in ("scheduler", "controller-manager"):
        if len(cluster.processes(role)) < 2:
            pytest.skip(f"fewer than two {role}s left running")
        leader = await async_wait_for(
            lambda role=role: cluster.leader(role), timeout=RECOVERY, message=f"a {role} leader"
        )
        await Kill().start(cluster, [leader])
        await cluster.wait_gone([leader], timeout=10)

        async def taken_over(role: str = role, old: str = leader.name) -> bool:
            new = await cluster.leader(role)
            return new is not None and new.name != old

        await async_wait_for(taken_over, timeout=RECOVERY, message=f"a new {role} leader")
    # Both new leaders at work: a fourth replica must be created (controller manager),
    # bound (scheduler) and started (node agent).
    # A merge patch carries no resourceVersion: no Conflict with the controller's writes.
    await api.patch_merge("Deployment", "sleeper", {"spec": {"replicas": 4}}, namespace="default")
    try:
        pods = await whole_again(api, whole)
        assert len(pods) == 4
        assert all(p.spec.node_name for p in pods)
    finally:
        await api.patch_merge(
            "Deployment", "sleeper", {"spec": {"replicas": 3}}, namespace="default"
        )
    await whole_again(api, whole)


async def _node_with_pods(api: ApiClient, cluster: Cluster, launched: Launched) -> str:
    pods = await whole_again(api, launched)
    running = {p.name for p in cluster.processes("node-agent")}
    used = sorted({p.spec.node_name for p in pods if p.spec.node_name in running})
    assert used, "no running node hosts a pod"
    return used[0]


async def test_paused_node_agent_pods_move_and_no_duplicates_remain(
    whole: Launched, api: ApiClient
) -> None:
    cluster = whole.cluster
    victim_node = await _node_with_pods(api, cluster, whole)
    [victim] = await cluster.select(Selector(role="node-agent", name=victim_node))
    placement = PodPlacement(nodes(cluster))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(placement.run)
        heal = await Pause(duration=0).start(cluster, [victim])
        assert heal is not None
        try:

            async def moved() -> bool:
                desired, running = await deployment_pods(api, "default", "sleeper")
                return len(running) == desired and all(
                    p.spec.node_name != victim_node for p in running
                )

            await async_wait_for(
                polled(moved),
                timeout=RECOVERY,
                interval=0.3,
                message="pods replaced on other nodes",
            )
        finally:
            await heal()

        async def no_orphans() -> bool:
            return not await orphans(api, nodes(cluster))

        try:
            await async_wait_for(
                polled(no_orphans), timeout=RECOVERY, interval=0.3, message="no container left over"
            )
        except AssertionError:
            raise AssertionError(f"{await orphans(api, nodes(cluster))}\n{whole.logs()}") from None
        nursery.cancel_scope.cancel()
    verdict = placement.result()
    assert verdict.ok, verdict.detail
    assert placement.samples > 10


async def test_node_agent_killed_for_good_pods_run_elsewhere(
    whole: Launched, api: ApiClient
) -> None:
    cluster = whole.cluster
    if len(cluster.processes("node-agent")) < 2:
        pytest.skip("fewer than two node agents left running")
    victim_node = await _node_with_pods(api, cluster, whole)
    [victim] = await cluster.select(Selector(role="node-agent", name=victim_node))
    await Kill().start(cluster, [victim])
    await cluster.wait_gone([victim], timeout=10)

    async def elsewhere() -> bool:
        desired, running = await deployment_pods(api, "default", "sleeper")
        return len(running) == desired and all(p.spec.node_name != victim_node for p in running)

    await async_wait_for(
        polled(elsewhere), timeout=RECOVERY, interval=0.3, message="pods elsewhere"
    )
    survivors = {p.name for p in cluster.processes("node-agent")}
    _, running = await deployment_pods(api, "default", "sleeper")
    assert {p.spec.node_name for p in running} <= survivors
