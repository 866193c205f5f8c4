"""The scheduler against a real API server on a real raftstore member.

Each test runs its own scheduler under a scheduler name of its own, so it sees only its
own pods; Nodes are created as objects (Ready, with allocatable) and deleted after it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from functools import partial
from typing import Any

import pytest
import trio

from actors.client import ApiClient
from actors.scheduler import PodInfo, Scheduler, SchedulerConfig
from actors.scheduler.framework import ClusterView, FilterPlugin, NodeCheck
from actors.scheduler.plugins import DEFAULT_FILTERS
from tests.actors.scheduler import objects
from tests.support.processes import async_wait_for

TIMEOUT = 20


@pytest.fixture
def name() -> str:
    return f"sched-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def config(name: str) -> SchedulerConfig:
    return SchedulerConfig(scheduler_name=name, seed=1)


async def start(nursery: trio.Nursery, api: ApiClient, config: SchedulerConfig) -> Scheduler:
    scheduler = Scheduler(api, config=config)
    await nursery.start(scheduler.run)
    return scheduler


async def add_node(api: ApiClient, name: str, **kw: Any) -> Any:
    return await api.create(objects.node(name, **kw))


async def add_pod(api: ApiClient, ns: str, name: str, scheduler: str, **kw: Any) -> Any:
    p = objects.pod(name, namespace=ns, **kw)
    p.metadata.uid = ""
    p.spec.scheduler_name = scheduler
    return await api.create(p)


async def pods(api: ApiClient, ns: str) -> dict[str, Any]:
    return {p.metadata.name: p for p in (await api.list("pods", namespace=ns)).items}


async def bound(api: ApiClient, ns: str, count: int) -> dict[str, str]:
    """Wait until ``count`` pods in ``ns`` are bound; pod name -> node name."""

    async def check() -> dict[str, str] | None:
        placed = {n: p.spec.node_name for n, p in (await pods(api, ns)).items() if p.spec.node_name}
        return placed if len(placed) >= count else None

    result = await async_wait_for(check, timeout=TIMEOUT, message=f"{count} pods bound")
    assert result is not None
    return result


async def events_of(api: ApiClient, ns: str, reason: str) -> list[Any]:
    return [e for e in (await api.list("events", namespace=ns)).items if e.reason == reason]


def uid(node: str) -> str:
    return f"u-{node}"


async def test_pods_go_to_nodes_that_fit_and_get_a_scheduled_event(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    await add_node(api, "small", cpu="1")
    await add_node(
        api, "gpu", cpu="16", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    )
    await add_node(api, "big", cpu="8")
    await add_node(api, "cordoned", cpu="32", unschedulable=True)
    await add_node(api, "down", cpu="32", conditions=[{"type": "Ready", "status": "False"}])
    scheduler = await start(nursery, api, config)
    await add_pod(api, ns, "app", config.scheduler_name, cpu="2")
    await add_pod(api, ns, "other", "someone-else", cpu="100m")
    assert await bound(api, ns, 1) == {"app": "big"}

    async def scheduled_event() -> list[Any]:
        return await events_of(api, ns, "Scheduled")

    [event] = await async_wait_for(scheduled_event, timeout=TIMEOUT, message="Scheduled event")
    assert event.type == "Normal"
    assert event.message == f"Successfully assigned {ns}/app to big"
    assert event.source.component == config.scheduler_name
    assert not (await pods(api, ns))["other"].spec.node_name  # not ours to schedule
    assert scheduler.metrics.attempts == {"scheduled": 1}


async def test_replicas_spread_across_nodes(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    for n in ("a", "b", "c"):
        await add_node(api, n)
    await start(nursery, api, config)
    for i in range(6):
        await add_pod(api, ns, f"web-{i}", config.scheduler_name, cpu="100m", owner="web")
    placed = await bound(api, ns, 6)
    assert Counter(placed.values()) == {"a": 2, "b": 2, "c": 2}


async def test_unschedulable_pod_is_reported_then_placed_when_a_node_joins(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    await add_node(api, "a", cpu="1")
    await add_node(api, "b", cpu="1")
    await add_node(
        api, "gpu", cpu="8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    )
    scheduler = await start(nursery, api, config)
    await add_pod(api, ns, "big", config.scheduler_name, cpu="2")
    message = (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
        "2 Insufficient cpu."
    )

    async def reported() -> Any:
        pod = (await pods(api, ns))["big"]
        for c in pod.status.conditions:
            if c.type == "PodScheduled" and c.status == "False":
                return c
        return None

    condition = await async_wait_for(reported, timeout=TIMEOUT, message="PodScheduled=False")
    assert (condition.reason, condition.message) == ("Unschedulable", message)
    assert condition.HasField("last_transition_time")

    async def failed_events() -> list[Any]:
        return await events_of(api, ns, "FailedScheduling")

    [event] = await async_wait_for(failed_events, timeout=TIMEOUT, message="FailedScheduling")
    assert (event.type, event.message) == ("Warning", message)

    # A heartbeat (a node status change that cannot help) leaves it waiting: no busy loop.
    node = await api.get("nodes", "a")
    node.status.conditions[0].message = "still here"
    beat = await api.update_status(node)

    def seen() -> bool:
        cached = scheduler.nodes.cache.get("a")
        return (
            cached is not None
            and cached.metadata.resource_version == beat.metadata.resource_version
        )

    await async_wait_for(seen, timeout=TIMEOUT, message="the heartbeat seen")
    assert scheduler.queue.where(f"{ns}/big") == "unschedulable"
    assert scheduler.metrics.attempts["unschedulable"] == 1

    await add_node(api, "c", cpu="4")
    assert await bound(api, ns, 1) == {"big": "c"}
    assert scheduler.metrics.attempts == {"unschedulable": 1, "scheduled": 1}
    placed = (await pods(api, ns))["big"]
    assert [(c.type, c.status) for c in placed.status.conditions] == [("PodScheduled", "True")]


async def test_assumed_pods_prevent_overcommit_in_a_burst(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    for n in ("a", "b", "c"):
        await add_node(api, n, cpu="10", memory="64Gi")
    scheduler = await start(nursery, api, config)
    async with trio.open_nursery() as creating:
        for i in range(31):
            creating.start_soon(
                partial(add_pod, api, ns, f"p{i:02}", config.scheduler_name, cpu="1")
            )
    placed = await bound(api, ns, 30)
    assert Counter(placed.values()) == {"a": 10, "b": 10, "c": 10}

    async def left_over() -> Any:
        unbound = [p for p in (await pods(api, ns)).values() if not p.spec.node_name]
        conditions = [c for p in unbound for c in p.status.conditions if c.type == "PodScheduled"]
        return conditions[0] if conditions else None

    condition = await async_wait_for(left_over, timeout=TIMEOUT, message="the 31st reported")
    assert condition.message == "0/3 nodes are available: 3 Insufficient cpu."
    assert scheduler.metrics.attempts["scheduled"] == 30
    assert scheduler.cache.expired == 0


async def informers_only(
    nursery: trio.Nursery, api: ApiClient, config: SchedulerConfig
) -> Scheduler:
    """A scheduler whose informers and recorder run but whose loop does not: the test
    drives :meth:`Scheduler.schedule_one` itself."""
    scheduler = Scheduler(api, config=config)
    await nursery.start(scheduler.recorder.run)
    for informer in (scheduler.namespaces, scheduler.nodes, scheduler.pods):
        await nursery.start(informer.run)
    return scheduler


async def test_a_bind_that_conflicts_is_dropped_and_the_cache_follows_the_store(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    await add_node(api, "a", cpu="4")
    await add_node(api, "b", cpu="4", memory="16Gi")
    scheduler = await informers_only(nursery, api, config)
    await add_pod(api, ns, "p", config.scheduler_name, cpu="1")
    key = f"{ns}/p"
    await async_wait_for(lambda: key in scheduler.queue, timeout=TIMEOUT, message="queued")
    queued = await scheduler.queue.pop()
    write = scheduler.schedule_one(queued)
    assert write is not None
    chosen = scheduler.cache.node_of(key)
    other = "a" if chosen == "b" else "b"
    assert scheduler.cache.is_assumed(key)
    await api.bind("p", other, namespace=ns)  # someone else was faster
    await write()
    assert scheduler.metrics.bind_failures == {"Conflict": 1}
    await async_wait_for(
        lambda: scheduler.cache.node_of(key) == other, timeout=TIMEOUT, message="the store's node"
    )
    assert not scheduler.cache.is_assumed(key)
    requested = {n.name: n.requested.milli_cpu for n in scheduler.cache.nodes}
    assert requested == {chosen: 0, other: 1000}
    assert key not in scheduler.queue


async def test_a_bind_of_a_deleted_pod_is_dropped(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    await add_node(api, "a")
    scheduler = await informers_only(nursery, api, config)
    await add_pod(api, ns, "p", config.scheduler_name)
    key = f"{ns}/p"
    await async_wait_for(lambda: key in scheduler.queue, timeout=TIMEOUT, message="queued")
    write = scheduler.schedule_one(await scheduler.queue.pop())
    assert write is not None
    await api.delete("pods", "p", namespace=ns, grace_period_seconds=0)
    await async_wait_for(
        lambda: scheduler.pods.cache.get(key) is None, timeout=TIMEOUT, message="deleted"
    )
    await write()
    assert scheduler.metrics.bind_failures == {"NotFound": 1}
    assert scheduler.cache.node_of(key) is None
    assert key not in scheduler.queue


async def test_a_plugin_that_fails_on_one_pod_does_not_stop_the_others(
    api: ApiClient, ns: str, nursery: trio.Nursery, config: SchedulerConfig
) -> None:
    def prepare(pod: PodInfo, view: ClusterView) -> NodeCheck | None:
        if pod.name == "bad":
            raise RuntimeError("a bug in a plugin")
        return None

    await add_node(api, "a")
    scheduler = Scheduler(
        api, config=config, filters=(*DEFAULT_FILTERS, FilterPlugin("Boom", prepare))
    )
    await nursery.start(scheduler.run)
    await add_pod(api, ns, "bad", config.scheduler_name)
    await add_pod(api, ns, "good", config.scheduler_name)
    assert await bound(api, ns, 1) == {"good": "a"}
    await async_wait_for(
        lambda: scheduler.metrics.attempts["error"] >= 1, timeout=TIMEOUT, message="an error"
    )
    assert scheduler.queue.where(f"{ns}/bad") in ("backoff", "active")
    assert scheduler.cache.node_of(f"{ns}/bad") is None
