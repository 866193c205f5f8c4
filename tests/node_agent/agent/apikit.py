"""Fixtures for node agent tests against a real API server on a real raftstore member.

Import the fixtures into a test module (``from tests.node_agent.agent.apikit import
api, ns, server, store  # noqa: F401``). The store is shared by the module's tests, so
every test works in its own namespace and on nodes with names of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, NotFound, open_api_client
from node_agent.runtime.process import ProcessRuntime
from proto import rpc
from proto.k8s import core_pb2
from tests.support.raftstore import raftstore_cluster


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ...]]:
    with raftstore_cluster(tmp_path_factory.mktemp("raftstore"), size=1) as cluster:
        yield cluster.endpoints


@pytest.fixture
async def server(nursery: trio.Nursery, store: tuple[str, ...]) -> rpc.Server:
    started: rpc.Server = await nursery.start(
        partial(run_apiserver, etcd_endpoints=store, bookmark_interval=0.2)
    )
    return started


@pytest.fixture
async def api(server: rpc.Server) -> AsyncIterator[ApiClient]:
    async with open_api_client(server.address, timeout=20) as client:
        yield client


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"t{uuid.uuid4().hex[:10]}"
    namespace = core_pb2.Namespace(api_version="v1", kind="Namespace")
    namespace.metadata.name = name
    await api.create(namespace)
    return name


def node_name() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"


def bound_pod(
    name: str,
    namespace: str,
    node: str,
    *commands: list[str] | str,
    restart_policy: str = "Always",
    image: str = "busybox",
    env: dict[str, str] | None = None,
    grace: int | None = None,
) -> core_pb2.Pod:
    """A pod created already bound to ``node``; a string command runs with ``sh -c``."""
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name, pod.metadata.namespace = name, namespace
    pod.spec.node_name = node
    pod.spec.restart_policy = restart_policy
    if grace is not None:
        pod.spec.termination_grace_period_seconds = grace
    for index, command in enumerate(commands or ("sleep infinity",)):
        container = pod.spec.containers.add(name=f"c{index}", image=image)
        container.command.extend(["sh", "-c", command] if isinstance(command, str) else command)
        for key, value in (env or {}).items():
            container.env.add(name=key, value=value)
    return pod


async def poll(predicate: Callable[[], Any], *, timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail with the last value."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = predicate()
            if hasattr(last, "__await__"):
                last = await last
            if last:
                return last
            await trio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def get_pod(api: ApiClient, namespace: str, name: str) -> core_pb2.Pod | None:
    try:
        return await api.get(core_pb2.Pod, name, namespace=namespace)
    except NotFound:
        return None


def container(pod: core_pb2.Pod | None, name: str = "c0") -> core_pb2.ContainerStatus:
    if pod is not None:
        for status in (*pod.status.init_container_statuses, *pod.status.container_statuses):
            if status.name == name:
                return status
    return core_pb2.ContainerStatus()


@pytest.fixture
async def process_runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime under ``tmp_path/node/containers``; every container it still runs
    after the test is killed (by process group, through the runtime)."""
    runtime = ProcessRuntime(state_dir=tmp_path / "node" / "containers")
    try:
        yield runtime
    finally:
        with trio.CancelScope(shield=True):
            for info in await runtime.containers():
                if info.status.running:
                    await runtime.stop(info.id, grace=0)


def host_path_volume(pod: core_pb2.Pod, name: str, path: Path, mount_path: str) -> None:
    """Mount the host directory ``path`` at ``mount_path`` in every container of ``pod``."""
    volume = pod.spec.volumes.add(name=name)
    volume.host_path.path = str(path)
    volume.host_path.type = "DirectoryOrCreate"
    for c in (*pod.spec.init_containers, *pod.spec.containers):
        c.volume_mounts.add(name=name, mount_path=mount_path)
