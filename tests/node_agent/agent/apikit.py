"""Helpers for node agent tests against a real API server on a real raftstore member (the
fixtures ``store``, ``server``, ``api``, ``ns`` and ``process_runtime`` of this folder's
conftest.py). The store is shared by a module's tests, so every test works in its own
namespace and on nodes with names of its own (:func:`node_name`).

:func:`start_agent` starts a real :class:`NodeAgent` on those (with short lease and
back-off periods, and no service proxy unless asked); the other helpers build pods bound
to a node, poll for what the API server shows of them, and read what their containers
wrote into a hostPath directory of the test (:func:`lines`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from actors.client import ApiClient, NotFound
from node_agent.agent.agent import AgentOptions, NodeAgent
from node_agent.pods.images import ImageCatalog
from node_agent.runtime.base import ContainerRuntime
from proto.k8s import core_pb2


def node_name() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"


AGENT_OPTIONS = AgentOptions(lease_period=1.0, max_backoff=1.0, proxy=False)
"""What :func:`start_agent` runs with unless told otherwise: a Lease renewed every second,
back-off capped at a second, no service proxy."""


async def start_agent(
    nursery: trio.Nursery,
    api: ApiClient,
    tmp_path: Path,
    runtime: ContainerRuntime,
    *,
    name: str | None = None,
    catalog: ImageCatalog | None = None,
    port: int | None = None,
    **options: Any,
) -> NodeAgent:
    """Start a node agent in ``nursery`` with its data under ``tmp_path/node``; returns once
    it is registered and syncing its pods.

    ``name`` defaults to a fresh node name; ``options`` are :class:`AgentOptions` fields
    that replace those of :data:`AGENT_OPTIONS`; ``port`` serves the agent's API (0: a free
    port).
    """
    agent = NodeAgent(
        api,
        name=name or node_name(),
        runtime=runtime,
        data_dir=tmp_path / "node",
        options=replace(AGENT_OPTIONS, **options),
        catalog=catalog,
        port=port,
    )
    started: NodeAgent = await nursery.start(agent.run)
    return started


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


async def in_phase(
    api: ApiClient, namespace: str, name: str, phase: str = "Running"
) -> core_pb2.Pod | None:
    """The pod if it exists and is in ``phase``, else None (for :func:`poll`)."""
    pod = await get_pod(api, namespace, name)
    return pod if pod is not None and pod.status.phase == phase else None


async def gone(api: ApiClient, namespace: str, name: str) -> bool:
    return await get_pod(api, namespace, name) is None


async def events(api: ApiClient, namespace: str, reason: str) -> list[core_pb2.Event]:
    """The namespace's events with ``reason``."""
    listed = (await api.list("Event", namespace=namespace)).items
    return [e for e in listed if e.reason == reason]


def lines(path: Path) -> list[str]:
    """The lines of the file at ``path``; none while it does not exist."""
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def container(pod: core_pb2.Pod | None, name: str = "c0") -> core_pb2.ContainerStatus:
    if pod is not None:
        for status in (*pod.status.init_container_statuses, *pod.status.container_statuses):
            if status.name == name:
                return status
    return core_pb2.ContainerStatus()


def host_path_volume(pod: core_pb2.Pod, name: str, path: Path, mount_path: str) -> None:
    """Mount the host directory ``path`` at ``mount_path`` in every container of ``pod``."""
    volume = pod.spec.volumes.add(name=name)
    volume.host_path.path = str(path)
    volume.host_path.type = "DirectoryOrCreate"
    for c in (*pod.spec.init_containers, *pod.spec.containers):
        c.volume_mounts.add(name=name, mount_path=mount_path)
