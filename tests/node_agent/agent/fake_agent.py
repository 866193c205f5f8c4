"""A node agent API for tests: the real process runtime and service, a fake lookup.

The pod workers are replaced by :class:`FakeLookup`, filled by the test through
:meth:`RunningAgent.start_container` (which starts a real container and registers it as
the current instance of a pod's container). Everything the agent starts is stopped when
the block ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.client import ApiClient
from node_agent.agent.lookup import ContainerRef
from node_agent.agent.service import NodeAgentService
from node_agent.runtime.base import ContainerSpec
from node_agent.runtime.logs import LogRotation
from node_agent.runtime.process import ProcessRuntime
from proto import rpc
from proto.k8s import kinds
from tests.node_agent.runtime.conftest import PATH, _kill_everything


@dataclass
class FakeLookup:
    """Pods as the pod workers would describe them: instances per container, oldest first."""

    pods_: dict[tuple[str, str], dict[str, list[ContainerRef]]] = field(default_factory=dict)

    def add(self, namespace: str, pod: str, container: str, ref: ContainerRef) -> None:
        self.pods_.setdefault((namespace, pod), {}).setdefault(container, []).append(ref)

    def find(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> ContainerRef | None:
        instances = self.pods_.get((namespace, pod), {}).get(container)
        if instances is None:
            return None
        if previous:
            if len(instances) < 2:
                return ContainerRef(container_id=None, log_path=None, running=False)
            return instances[-2]
        return instances[-1]

    def default_container(self, namespace: str, pod: str) -> str | None:
        containers = self.pods_.get((namespace, pod))
        return None if containers is None else next(iter(containers))

    def pods(self) -> list[tuple[str, str]]:
        return list(self.pods_)

    def containers(self, namespace: str, pod: str) -> list[tuple[str, ContainerRef]]:
        return [(n, refs[-1]) for n, refs in self.pods_.get((namespace, pod), {}).items()]


@dataclass
class RunningAgent:
    lookup: FakeLookup
    runtime: ProcessRuntime
    service: NodeAgentService
    server: rpc.Server
    base: Path

    @property
    def port(self) -> int:
        return self.server.port

    def spec(
        self, namespace: str, pod: str, container: str, argv: list[str], **fields: object
    ) -> ContainerSpec:
        values: dict[str, object] = {
            "pod_uid": f"uid-{namespace}-{pod}",
            "pod_namespace": namespace,
            "pod_name": pod,
            "container_name": container,
            "attempt": 0,
            "argv": tuple(argv),
            "root_dir": self.base / "pods" / namespace / pod / container,
            "log_path": self.base / "logs" / namespace / pod / container / "0.log",
            "env": {"PATH": PATH},
        }
        values.update(fields)
        return ContainerSpec(**values)  # type: ignore[arg-type]

    async def start_container(
        self, namespace: str, pod: str, container: str, argv: list[str], **fields: object
    ) -> ContainerRef:
        spec = self.spec(namespace, pod, container, argv, **fields)
        container_id = await self.runtime.start(spec)
        ref = ContainerRef(container_id=container_id, log_path=spec.log_path, running=True)
        self.lookup.add(namespace, pod, container, ref)
        return ref


@asynccontextmanager
async def running_agent(
    base: Path, *, node_name: str, host: str = "127.0.0.1", cpu_window: float = 0.5
) -> AsyncIterator[RunningAgent]:
    """Serve the node agent API on ``host`` (a free port) until the block ends.

    The runtime rotates logs at 1 KiB, so that following meets rotation.
    """
    state_dir = base / "containers"
    runtime = ProcessRuntime(state_dir=state_dir, rotation=LogRotation(max_bytes=1024, keep=5))
    lookup = FakeLookup()
    service = NodeAgentService(
        runtime, lookup, node_name=node_name, poll_interval=0.02, cpu_window=cpu_window
    )
    try:
        async with trio.open_nursery() as nursery:
            server: rpc.Server = await nursery.start(
                lambda task_status: service.serve(host=host, task_status=task_status)
            )
            try:
                yield RunningAgent(lookup, runtime, service, server, base)
            finally:
                with trio.CancelScope(shield=True):
                    for info in await runtime.containers():
                        if info.status.running:
                            await runtime.stop(info.id, grace=0)
                        await runtime.remove(info.id)
                nursery.cancel_scope.cancel()
    finally:
        _kill_everything(state_dir)


# ---------------------------------------------------------------------------------------
# With an API server: a Node that points to the agent, pods bound to it


async def make_node(api: ApiClient, *, address: str = "127.0.0.1", port: int = 0) -> str:
    """A Node (unique name) whose status says where its agent listens (port 0: nowhere)."""
    name = f"n{uuid.uuid4().hex[:8]}"
    node = kinds.by_kind("Node").new()
    node.metadata.name = name
    created: Any = await api.create(node)
    created.status.addresses.add(type="InternalIP", address=address)
    created.status.addresses.add(type="Hostname", address=name)
    if port:
        created.status.daemon_endpoints.kubelet_endpoint.port = port
    created.status.allocatable.update({"cpu": "2", "memory": "4Gi", "pods": "110"})
    await api.update_status(created)
    return name


async def make_pod(
    api: ApiClient,
    namespace: str,
    name: str,
    containers: list[str],
    *,
    node: str = "",
    init: Sequence[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> Any:
    """A pod with busybox containers, bound to ``node`` when given."""
    pod: Any = kinds.by_kind("Pod").new()
    pod.metadata.name = name
    pod.metadata.namespace = namespace
    for container in containers:
        pod.spec.containers.add(name=container, image="busybox")
    for container in init:
        pod.spec.init_containers.add(name=container, image="busybox")
    pod.metadata.annotations.update(annotations or {})
    created = await api.create(pod)
    if node:
        created = await api.bind(name, node, namespace=namespace)
    return created


@asynccontextmanager
async def published_agent(api: ApiClient, base: Path) -> AsyncIterator[tuple[RunningAgent, str]]:
    """A node agent API on 127.0.0.1 and a Node pointing to it: (agent, node name)."""
    name = f"n{uuid.uuid4().hex[:8]}"
    async with running_agent(base, node_name=name) as agent:
        node = kinds.by_kind("Node").new()
        node.metadata.name = name
        created: Any = await api.create(node)
        created.status.addresses.add(type="InternalIP", address="127.0.0.1")
        created.status.daemon_endpoints.kubelet_endpoint.port = agent.port
        created.status.allocatable.update({"cpu": "2", "memory": "4Gi", "pods": "110"})
        await api.update_status(created)
        yield agent, name
