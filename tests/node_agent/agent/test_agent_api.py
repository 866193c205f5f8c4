"""A node agent on the sim runtime against a real API server on a real raftstore member.

Node registration and Lease, pods bound to the node through their lifecycle (Running,
restart policies, deletion), as a user reads them from the API.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import trio

from actors.client import ApiClient
from node_agent.agent.agent import AgentOptions, NodeAgent
from node_agent.runtime.sim import SimRuntime
from proto.k8s import coordination_pb2, core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    container,
    get_pod,
    gone,
    in_phase,
    node_name,
    poll,
)

FAST = AgentOptions(
    lease_period=0.2,
    node_status_update_frequency=0.2,
    max_backoff=1.0,
    proxy=False,
    cpu="3",
    memory="6Gi",
    max_pods=20,
)


async def start_agent(
    nursery: trio.Nursery, api: ApiClient, tmp_path: Path, name: str, **options: object
) -> NodeAgent:
    opts = AgentOptions(**{**FAST.__dict__, **options})
    agent = NodeAgent(api, name=name, runtime=SimRuntime(), data_dir=tmp_path / name, options=opts)
    started: NodeAgent = await nursery.start(agent.run)
    return started


async def test_registers_node_and_renews_its_lease(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    name = node_name()
    await start_agent(nursery, api, tmp_path, name, daemon_port=10250)
    node = await api.get(core_pb2.Node, name)
    assert node.metadata.labels["kubernetes.io/hostname"] == name
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert (
        node.metadata.labels["beta.kubernetes.io/arch"]
        == node.metadata.labels["kubernetes.io/arch"]
    )
    assert node.metadata.annotations["raftsman.io/limits-enforcement"] == "none"
    assert dict(node.status.capacity) == {
        "cpu": "3",
        "memory": "6Gi",
        "pods": "20",
        "ephemeral-storage": node.status.capacity["ephemeral-storage"],
    }
    assert node.status.allocatable == node.status.capacity
    conditions = {c.type: (c.status, c.reason) for c in node.status.conditions}
    assert conditions == {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID"),
        "Ready": ("True", "KubeletReady"),
    }
    assert [(a.type, a.address) for a in node.status.addresses] == [
        ("InternalIP", "127.0.0.1"),
        ("Hostname", name),
    ]
    assert node.status.node_info.container_runtime_version.startswith("sim://")
    assert node.status.node_info.operating_system == "linux"
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert node.spec.pod_cidr

    lease = await api.get(coordination_pb2.Lease, name, namespace="kube-node-lease")
    assert lease.spec.holder_identity == name
    assert lease.spec.lease_duration_seconds == 40
    assert [(o.kind, o.name, o.uid) for o in lease.metadata.owner_references] == [
        ("Node", name, node.metadata.uid)
    ]
    first = lease.spec.renew_time.ToNanoseconds()

    async def renewed() -> bool:
        later = await api.get(coordination_pb2.Lease, name, namespace="kube-node-lease")
        return later.spec.renew_time.ToNanoseconds() > first

    await poll(renewed, timeout=5)


async def test_readopts_an_existing_node_and_repairs_ready(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    name = node_name()
    node = core_pb2.Node(api_version="v1", kind="Node")
    node.metadata.name = name
    node.metadata.labels["team"] = "blue"
    node.spec.unschedulable = True
    created = await api.create(node)
    await start_agent(nursery, api, tmp_path, name)
    adopted = await api.get(core_pb2.Node, name)
    assert adopted.metadata.uid == created.metadata.uid
    assert adopted.metadata.labels["team"] == "blue" and adopted.spec.unschedulable
    assert adopted.metadata.labels["kubernetes.io/hostname"] == name
    # Another component marks the node not ready (as the node lifecycle controller does):
    adopted.status.conditions[-1].status = "Unknown"
    await api.update_status(adopted)

    async def ready_again() -> bool:
        now = await api.get(core_pb2.Node, name)
        return any(c.type == "Ready" and c.status == "True" for c in now.status.conditions)

    await poll(ready_again, timeout=5)


async def test_pod_runs_and_reports_status(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path, ns: str
) -> None:
    name = node_name()
    agent = await start_agent(nursery, api, tmp_path, name)
    await api.create(bound_pod("web", ns, name, "sleep infinity", "sleep infinity"))

    async def running() -> core_pb2.Pod | None:
        pod = await get_pod(api, ns, "web")
        ready = pod is not None and any(
            c.type == "Ready" and c.status == "True" for c in pod.status.conditions
        )
        return pod if pod is not None and pod.status.phase == "Running" and ready else None

    pod = await poll(running)
    # One write made it Running and Ready; the echo of our own write changes nothing.
    await agent.status.wait_idle()
    writes = agent.status.writes
    assert writes <= 2
    await trio.sleep(1.0)  # time for the watch to bring our write back
    assert agent.status.writes == writes
    node = await api.get(core_pb2.Node, name)
    assert pod.status.host_ip == "127.0.0.1"
    prefix = node.spec.pod_cidr.rsplit(".", 1)[0]
    assert pod.status.pod_ip.startswith(prefix + ".")
    assert [c.name for c in pod.status.container_statuses] == ["c0", "c1"]
    assert all(c.state.HasField("running") and c.ready for c in pod.status.container_statuses)
    assert pod.status.HasField("start_time")
    types = [c.type for c in pod.status.conditions]
    assert types[:4] == ["Initialized", "Ready", "ContainersReady", "PodScheduled"]

    async def events_recorded() -> bool:
        events = await api.list("Event", namespace=ns)
        reasons = {e.reason for e in events.items if e.involved_object.name == "web"}
        return {"Pulled", "Created", "Started"} <= reasons

    await poll(events_recorded)


async def test_restart_policies(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path, ns: str
) -> None:
    name = node_name()
    await start_agent(nursery, api, tmp_path, name)
    await api.create(bound_pod("never-ok", ns, name, "sleep 0.2; exit 0", restart_policy="Never"))
    await api.create(bound_pod("never-bad", ns, name, "sleep 0.2; exit 4", restart_policy="Never"))
    await api.create(bound_pod("onfail", ns, name, "sleep 0.2; exit 0", restart_policy="OnFailure"))
    await api.create(bound_pod("always", ns, name, "sleep 0.2; exit 1"))

    async def phase(pod_name: str) -> str:
        pod = await get_pod(api, ns, pod_name)
        return pod.status.phase if pod else ""

    await poll(lambda: _equals(phase("never-ok"), "Succeeded"))
    await poll(lambda: _equals(phase("never-bad"), "Failed"))
    await poll(lambda: _equals(phase("onfail"), "Succeeded"))
    bad = await get_pod(api, ns, "never-bad")
    terminated = container(bad).state.terminated
    assert (terminated.exit_code, terminated.reason) == (4, "Error")
    assert terminated.HasField("finished_at") and terminated.container_id.startswith("sim://")

    async def crash_looping() -> bool:
        pod = await get_pod(api, ns, "always")
        c = container(pod)
        return c.restart_count >= 3 and pod is not None and pod.status.phase == "Running"

    await poll(crash_looping)
    pod = await get_pod(api, ns, "always")
    assert container(pod).last_state.terminated.exit_code == 1


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_deleting_a_pod_stops_its_containers_then_removes_it(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path, ns: str
) -> None:
    name = node_name()
    agent = await start_agent(nursery, api, tmp_path, name)
    await api.create(
        bound_pod("stubborn", ns, name, "sleep infinity", env={"SIM_IGNORE_TERM": "1"}, grace=1)
    )
    await poll(lambda: in_phase(api, ns, "stubborn", "Running"))
    deleted = await api.delete(core_pb2.Pod, "stubborn", namespace=ns)
    assert deleted.pending  # the node agent finishes the deletion
    began = trio.current_time()
    await poll(lambda: gone(api, ns, "stubborn"))
    assert trio.current_time() - began >= 0.9  # SIGTERM ignored: killed after the grace
    assert await agent.runtime.containers() == []
    await poll(lambda: agent.pods is not None and len(agent.pods) == 0)


async def test_a_pod_replaced_under_the_same_name_is_another_pod(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path, ns: str
) -> None:
    name = node_name()
    await start_agent(nursery, api, tmp_path, name)
    first = await api.create(bound_pod("p", ns, name, "sleep infinity", grace=0))
    await poll(lambda: in_phase(api, ns, "p", "Running"))
    await api.delete(core_pb2.Pod, "p", namespace=ns, grace_period_seconds=0)
    second = await api.create(bound_pod("p", ns, name, "sleep 0.1; exit 0", restart_policy="Never"))
    assert second.metadata.uid != first.metadata.uid
    await poll(lambda: in_phase(api, ns, "p", "Succeeded"))


async def test_orphaned_containers_are_removed_on_start(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path, ns: str
) -> None:
    name = node_name()
    runtime = SimRuntime()
    async with trio.open_nursery() as inner:
        agent = NodeAgent(api, name=name, runtime=runtime, data_dir=tmp_path / name, options=FAST)
        await inner.start(agent.run)
        await api.create(bound_pod("keep", ns, name, "sleep infinity"))
        await api.create(bound_pod("drop", ns, name, "sleep infinity", grace=0))
        await poll(lambda: in_phase(api, ns, "keep", "Running"))
        await poll(lambda: in_phase(api, ns, "drop", "Running"))
        inner.cancel_scope.cancel()  # the agent goes away, its containers stay
    keep_ids = {i.id for i in await runtime.containers() if i.spec.pod_name == "keep"}
    await api.delete(core_pb2.Pod, "drop", namespace=ns, grace_period_seconds=0)
    agent = NodeAgent(api, name=name, runtime=runtime, data_dir=tmp_path / name, options=FAST)
    await nursery.start(partial(agent.run))
    await poll(lambda: _no_containers_of(runtime, "drop"))
    assert {i.id for i in await runtime.containers() if i.spec.pod_name == "keep"} == keep_ids


async def _no_containers_of(runtime: SimRuntime, pod: str) -> bool:
    return not [i for i in await runtime.containers() if i.spec.pod_name == pod]
