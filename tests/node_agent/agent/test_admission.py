"""The node failing pods for reasons of its own: admission and eviction.

Admission: a node runs at most ``allocatable.pods`` pods; the rest are rejected
(``OutOfpods``). Eviction: a running pod is stopped for good and left ``Failed`` with the
reason (``Evicted``). Unit tests drive the pod manager on the sim runtime and trio's fake
clock; the end-to-end tests run a node agent on the process runtime against a real API
server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.client import ApiClient
from node_agent.runtime.process import ProcessRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    events,
    get_pod,
    in_phase,
    node_name,
    poll,
    start_agent,
)
from tests.node_agent.agent.kit import (
    Kit,
    ScriptedRuntime,
    container_status,
    deleting,
    eventually,
    make_pod,
    start_manager,
)

T0 = 1_700_000_000


def pod_at(name: str, created: int, *commands: str) -> core_pb2.Pod:
    pod = make_pod(*(commands or ("sleep infinity",)), name=name)
    pod.metadata.creation_timestamp.seconds = T0 + created
    return pod


def node_kit(tmp_path: Path, max_pods: int, kit: Kit | None = None) -> Kit:
    kit = kit or Kit(tmp_path)
    kit.ctx.node_allocatable = {"cpu": "4", "memory": "8Gi", "pods": str(max_pods)}
    return kit


def phase(kit: Kit, pod: core_pb2.Pod) -> str:
    return kit.status_of(pod).phase


async def pods_of(kit: Kit, pod: core_pb2.Pod) -> list[str]:
    return [
        i.spec.container_name
        for i in await kit.runtime.containers()
        if i.spec.pod_uid == pod.metadata.uid
    ]


async def test_pods_over_capacity_are_rejected_oldest_first(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = node_kit(tmp_path, max_pods=2)
    # Listed in an order unrelated to their age.
    newest, oldest, middle = pod_at("a", 30), pod_at("b", 10), pod_at("c", 20)
    manager = await start_manager(nursery, kit, newest, oldest, middle)
    await eventually(lambda: phase(kit, oldest) == phase(kit, middle) == "Running")
    await eventually(lambda: phase(kit, newest) == "Failed")
    status = kit.status_of(newest)
    assert status.reason == "OutOfpods"
    message = "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
    assert status.message == f"Pod was rejected: {message}"
    assert not status.container_statuses  # nothing of it ever ran
    assert ("a", "Warning", "OutOfpods", message) in kit.events.events
    await trio.sleep(60)
    assert await pods_of(kit, newest) == []
    assert phase(kit, newest) == "Failed"

    # A slot frees up: a new pod is admitted, the rejected one is not tried again.
    manager.pod_changed(deleting(oldest, grace=1))
    await eventually(lambda: manager.worker("default", "b") is None)
    manager.pod_changed(newest)  # e.g. a label changed
    late = pod_at("d", 40)
    manager.pod_changed(late)
    await eventually(lambda: phase(kit, late) == "Running")
    await trio.sleep(10)
    assert phase(kit, newest) == "Failed" and await pods_of(kit, newest) == []


async def test_two_pods_racing_for_the_last_slot_the_older_wins(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = node_kit(tmp_path, max_pods=2)
    manager = await start_manager(nursery, kit)
    first = pod_at("first", 0)
    manager.pod_changed(first)
    await eventually(lambda: phase(kit, first) == "Running")
    younger, older = pod_at("younger", 20), pod_at("older", 10)
    manager.pod_changed(younger)  # delivered first
    manager.pod_changed(older)
    await eventually(lambda: phase(kit, older) == "Running" and phase(kit, younger) == "Failed")
    assert kit.status_of(younger).message.endswith("used: 2, capacity: 2")


async def test_finished_pods_free_their_slot(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = node_kit(tmp_path, max_pods=1)
    manager = await start_manager(nursery, kit)
    job = pod_at("job", 0, "sleep 5")
    job.spec.restart_policy = "Never"
    manager.pod_changed(job)
    await eventually(lambda: phase(kit, job) == "Succeeded")
    web = pod_at("web", 10)
    manager.pod_changed(web)
    await eventually(lambda: phase(kit, web) == "Running")


async def test_readopted_pods_are_always_admitted(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)  # no pod limit
    pods = [pod_at(f"p{i}", i) for i in range(3)]
    async with trio.open_nursery() as nursery:
        await start_manager(nursery, kit, *pods)
        await eventually(lambda: all(phase(kit, p) == "Running" for p in pods))
        nursery.cancel_scope.cancel()  # the agent stops; its containers keep running
    # Restarted with room for two pods only, plus a new, older pod in the first list.
    kit2 = node_kit(tmp_path, max_pods=2, kit=Kit(tmp_path, runtime=kit.runtime))
    newcomer = pod_at("newcomer", -10)
    async with trio.open_nursery() as nursery:
        await start_manager(nursery, kit2, newcomer, *pods)
        await eventually(lambda: phase(kit2, newcomer) == "Failed")
        assert kit2.status_of(newcomer).message.endswith("used: 3, capacity: 2")
        await eventually(lambda: all(phase(kit2, p) == "Running" for p in pods))
        assert all(container_restarts(kit2, p) == 0 for p in pods)
        nursery.cancel_scope.cancel()


def container_restarts(kit: Kit, pod: core_pb2.Pod) -> int:
    return sum(c.restart_count for c in kit.status_of(pod).container_statuses)


# --------------------------------------------------------------------------- eviction

EVICTED = "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi."


async def test_evicted_pod_is_stopped_for_good_and_kept_as_failed(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    runtime = ScriptedRuntime()
    kit = Kit(tmp_path, runtime=runtime)
    manager = await start_manager(nursery, kit)
    pod = pod_at("web", 0, "sleep infinity")
    pod.spec.termination_grace_period_seconds = 20
    pod.spec.init_containers.add(
        name="proxy", image="busybox", restart_policy="Always", command=["sleep", "infinity"]
    )
    pod.spec.init_containers[0].lifecycle.pre_stop.exec.command.extend(["check", "proxy"])
    pod.spec.containers[0].lifecycle.pre_stop.exec.command.extend(["sh", "-c", "sleep 3"])
    manager.pod_changed(pod)
    await eventually(lambda: phase(kit, pod) == "Running")
    began = trio.current_time()
    assert manager.evict(pod.metadata.uid, "Evicted", EVICTED)
    await eventually(lambda: phase(kit, pod) == "Failed" and not kit.ips.lookup(pod.metadata.uid))
    status = kit.status_of(pod)
    assert (status.reason, status.message) == ("Evicted", EVICTED)
    disruption = next(c for c in status.conditions if c.type == "DisruptionTarget")
    assert (disruption.status, disruption.reason, disruption.message) == (
        "True",
        "TerminationByKubelet",
        EVICTED,
    )
    # preStop hooks ran: the app's first (3 s), then the sidecar's.
    hooks = [(round(t - began, 3), argv[-1]) for t, argv in runtime.execs]
    assert hooks == [(0, "sleep 3"), (3, "proxy")]
    for name in ("c0", "proxy"):
        assert container_status(status, name).state.terminated.exit_code == 143
    assert ("web", "Warning", "Evicted", EVICTED) in kit.events.events
    await trio.sleep(300)  # never restarted
    assert not [i for i in await runtime.containers() if i.status.running]
    assert sum(c.restart_count for c in kit.status_of(pod).container_statuses) == 0
    assert phase(kit, pod) == "Failed" and kit.api.deleted == []  # the object stays
    assert not manager.evict(pod.metadata.uid, "Evicted", EVICTED)  # once only
    assert not manager.evict("no-such-uid", "Evicted", EVICTED)
    # Deleting the evicted pod finishes it like any other.
    manager.pod_changed(deleting(pod, grace=20))
    await eventually(lambda: kit.api.deleted)
    assert kit.api.deleted == [("default", "web", 0, pod.metadata.uid)]


@pytest.mark.parametrize("grace", [2, 7])
async def test_eviction_kills_after_the_pods_grace_period(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock, grace: int
) -> None:
    kit = Kit(tmp_path)
    manager = await start_manager(nursery, kit)
    pod = make_pod("sleep infinity", env={"SIM_IGNORE_TERM": "1"}, grace=grace, name="stubborn")
    manager.pod_changed(pod)
    await eventually(lambda: phase(kit, pod) == "Running")
    began = trio.current_time()
    assert manager.evict(pod.metadata.uid, "Evicted", EVICTED)
    await eventually(lambda: container_status(kit.status_of(pod)).state.HasField("terminated"))
    assert trio.current_time() - began == pytest.approx(grace, abs=0.1)
    assert container_status(kit.status_of(pod)).state.terminated.exit_code == 137


# --------------------------------------------------------------------------- end to end


async def test_node_with_max_pods_rejects_the_extra_pod(
    api: ApiClient,
    nursery: trio.Nursery,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    name = node_name()
    # Both pods are bound before the node starts: its first list holds both.
    await api.create(bound_pod("a-first", ns, name, "sleep infinity"))
    await api.create(bound_pod("b-second", ns, name, "sleep infinity"))
    await start_agent(nursery, api, tmp_path, process_runtime, name=name, max_pods=1)
    node = await api.get(core_pb2.Node, name)
    assert node.status.allocatable["pods"] == "1"

    async def settled() -> bool:
        first, second = await get_pod(api, ns, "a-first"), await get_pod(api, ns, "b-second")
        assert first is not None and second is not None
        return (first.status.phase, second.status.phase) == ("Running", "Failed")

    await poll(settled, timeout=20)
    rejected = await get_pod(api, ns, "b-second")
    assert rejected is not None
    assert (rejected.status.reason, rejected.status.message) == (
        "OutOfpods",
        "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 1, "
        "capacity: 1",
    )
    running = [i.spec.pod_name for i in await process_runtime.containers() if i.status.running]
    assert running == ["a-first"]

    (event,) = await poll(lambda: events(api, ns, "OutOfpods"))
    assert event.type == "Warning" and event.involved_object.name == "b-second"


async def test_evicted_pod_on_a_real_node(
    api: ApiClient,
    nursery: trio.Nursery,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    agent = await start_agent(nursery, api, tmp_path, process_runtime)
    await api.create(bound_pod("scratch", ns, agent.name, "sleep infinity", grace=5))

    pod = await poll(lambda: in_phase(api, ns, "scratch"), timeout=20)
    assert agent.pods is not None
    assert agent.pods.evict(pod.metadata.uid, "Evicted", EVICTED)

    failed = await poll(lambda: in_phase(api, ns, "scratch", "Failed"), timeout=20)
    assert (failed.status.reason, failed.status.message) == ("Evicted", EVICTED)
    terminated = failed.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 143  # SIGTERM
    assert not [i for i in await process_runtime.containers() if i.status.running]

    (event,) = await poll(lambda: events(api, ns, "Evicted"))
    assert event.type == "Warning" and event.message == EVICTED
