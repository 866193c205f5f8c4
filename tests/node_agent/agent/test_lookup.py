"""The pod manager as the agent API's ContainerLookup, and the API it serves end to end."""

from __future__ import annotations

from pathlib import Path

import trio

from actors.client import ApiClient
from node_agent.runtime.process import ProcessRuntime
from proto import rpc
from proto.k8s import core_pb2
from proto.node import node_agent_pb2 as pb
from proto.node import node_agent_pb2_grpc
from tests.node_agent.agent.apikit import bound_pod, container, get_pod, poll, start_agent
from tests.node_agent.agent.kit import Kit, eventually, make_pod, start_manager


async def test_lookup_answers_from_the_workers(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    kit = Kit(tmp_path)
    pod = make_pod("sleep infinity", "sleep 1; exit 1", init=("true",), name="web")
    manager = await start_manager(nursery, kit, pod)
    await eventually(lambda: (r := manager.find("default", "web", "c1")) is not None and r.running)
    assert manager.pods() == [("default", "web")]
    assert manager.default_container("default", "web") == "c0"
    assert [name for name, _ in manager.containers("default", "web")] == ["init0", "c0", "c1"]
    init = manager.find("default", "web", "init0")
    assert init is not None and not init.running and init.container_id is not None
    current = manager.find("default", "web", "c0")
    assert current is not None and current.running
    assert current.log_path == kit.ctx.logs_dir / f"default_web_{pod.metadata.uid}" / "c0" / "0.log"
    assert manager.find("default", "web", "nope") is None
    assert manager.find("default", "other", "c0") is None
    assert manager.default_container("default", "other") is None
    before = manager.find("default", "web", "c0", previous=True)
    assert before is not None and before.log_path is None  # no earlier instance


async def test_agent_api_serves_logs_of_current_and_previous_instances(
    api: ApiClient,
    nursery: trio.Nursery,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    agent = await start_agent(nursery, api, tmp_path, process_runtime, port=0)
    assert agent.server is not None
    port = agent.server.port
    node = await api.get(core_pb2.Node, agent.name)
    assert node.status.daemon_endpoints.kubelet_endpoint.port == port
    assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == ["127.0.0.1"]

    await api.create(
        bound_pod("talker", ns, agent.name, "echo hello $(date +%s%N); sleep 0.3; exit 1")
    )

    async def restarted() -> bool:
        return container(await get_pod(api, ns, "talker")).restart_count >= 1

    await poll(restarted, timeout=30)

    async def logs(previous: bool) -> bytes:
        out = b""
        request = pb.LogsRequest(namespace=ns, pod="talker", previous=previous)
        async with rpc.connect(f"127.0.0.1:{port}") as channel:
            stub = channel.stub(node_agent_pb2_grpc.NodeAgentStub)
            async with stub.Logs(request) as stream:
                async for chunk in stream:
                    out += chunk.data
        return out

    previous = await logs(True)
    assert previous.startswith(b"hello "), previous
    current = await poll(lambda: logs(False), timeout=10)
    assert current.startswith(b"hello ") and current != previous
