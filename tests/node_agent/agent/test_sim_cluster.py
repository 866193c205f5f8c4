"""100 simulated nodes in one process against a real API server: Ready, leases, pods Running."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from actors.client import ApiClient
from node_agent.agent.agent import AgentOptions
from node_agent.agent.sim import SimCluster, sim_node_names
from proto.k8s import coordination_pb2, core_pb2
from tests.node_agent.agent.apikit import bound_pod, poll

NODES = 100
PODS = 100


async def test_hundred_sim_nodes_register_and_run_pods(
    api: ApiClient, nursery: trio.Nursery, tmp_path: Path, ns: str
) -> None:
    prefix = f"sim{ns[1:6]}"
    names = sim_node_names(prefix, NODES)
    cluster = SimCluster(
        api,
        names=names,
        data_dir=tmp_path,
        options=AgentOptions(max_backoff=1.0),
    )
    began = time.monotonic()
    await nursery.start(cluster.run)
    registered = time.monotonic() - began

    nodes = [
        n
        for n in (await api.list_all(core_pb2.Node)).items
        if n.metadata.name.startswith(prefix + "-")
    ]
    assert sorted(n.metadata.name for n in nodes) == sorted(names)
    assert all(
        any(c.type == "Ready" and c.status == "True" for c in n.status.conditions) for n in nodes
    )
    assert len({n.spec.pod_cidr for n in nodes}) == NODES
    leases = [
        lease
        for lease in (await api.list_all(coordination_pb2.Lease, namespace="kube-node-lease")).items
        if lease.metadata.name.startswith(prefix + "-")
    ]
    assert len(leases) == NODES

    began = time.monotonic()
    async with trio.open_nursery() as creating:
        for i in range(PODS):
            pod = bound_pod(f"p{i}", ns, names[i % NODES], "sleep infinity")
            creating.start_soon(api.create, pod)

    async def all_running() -> bool:
        pods = (await api.list_all(core_pb2.Pod, namespace=ns)).items
        return len(pods) == PODS and all(p.status.phase == "Running" for p in pods)

    await poll(all_running, timeout=60, every=0.5)
    running = time.monotonic() - began
    pods = (await api.list_all(core_pb2.Pod, namespace=ns)).items
    by_node = {p.spec.node_name for p in pods}
    assert by_node == set(names)
    assert len({p.status.pod_ip for p in pods}) == PODS
    assert registered < 30 and running < 60, (registered, running)
    print(f"\n{NODES} nodes registered in {registered:.1f}s; {PODS} pods Running in {running:.1f}s")
