"""Fakes and builders for pod worker tests: the seams of :class:`PodContext`.

The worker runs for real on the sim runtime (trio's clock), real volumes and a real pod IP
allocator under a temporary directory; only the API server side is faked: statuses and
events are recorded, the final delete is recorded.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from actors.client import Deleted
from node_agent.agent.context import PodContext, Timings
from node_agent.network import PodIPAllocator
from node_agent.pods.images import ImageCatalog
from node_agent.pods.sources import StaticSources
from node_agent.pods.volumes import PodVolumes
from node_agent.runtime.base import ContainerRuntime
from node_agent.runtime.sim import SimRuntime
from proto.k8s import core_pb2


class FakeStatus:
    def __init__(self) -> None:
        self.latest: dict[str, core_pb2.PodStatus] = {}
        self.history: list[core_pb2.PodStatus] = []
        self.forgotten: list[str] = []

    def set(self, pod: core_pb2.Pod, status: core_pb2.PodStatus, *, force: bool = False) -> None:
        if self.latest.get(pod.metadata.uid) != status:
            self.history.append(status)
        self.latest[pod.metadata.uid] = status

    def forget(self, uid: str) -> None:
        self.forgotten.append(uid)


class FakeEvents:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((obj.metadata.name, type_, reason, message))

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events]


class FakeApi:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str, int | None, str]] = []

    async def delete(
        self,
        kind: Any,
        name: str,
        *,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        propagation_policy: str = "",
        uid: str = "",
        resource_version: str = "",
    ) -> Deleted:
        await trio.lowlevel.checkpoint()
        self.deleted.append((namespace, name, grace_period_seconds, uid))
        return Deleted(object=core_pb2.Pod(), pending=False)


class Kit:
    """A PodContext on fakes, plus what the fakes recorded."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        runtime: ContainerRuntime | None = None,
        timings: Timings | None = None,
        catalog: ImageCatalog | None = None,
    ) -> None:
        self.status = FakeStatus()
        self.events = FakeEvents()
        self.api = FakeApi()
        self.sources = StaticSources()
        self.runtime = runtime or SimRuntime()
        self.ips = PodIPAllocator("127.64.9.0/24", tmp_path / "pod-ips.json")
        self.ctx = PodContext(
            node_name="node-a",
            host_ip="127.0.0.1",
            runtime=self.runtime,
            status=self.status,
            events=self.events,
            api=self.api,
            ips=self.ips,
            volumes=PodVolumes(pods_dir=tmp_path / "pods", sources=self.sources),
            sources=self.sources,
            catalog=catalog or ImageCatalog(),
            logs_dir=tmp_path / "logs",
            timings=timings or Timings(),
            node_allocatable={"cpu": "4", "memory": "8Gi"},
        )

    def status_of(self, pod: core_pb2.Pod) -> core_pb2.PodStatus:
        return self.status.latest.get(pod.metadata.uid, core_pb2.PodStatus())


_counter = itertools.count()


def make_pod(
    *commands: list[str] | str,
    restart_policy: str = "Always",
    init: tuple[list[str] | str, ...] = (),
    name: str | None = None,
    namespace: str = "default",
    image: str = "busybox",
    env: dict[str, str] | None = None,
    grace: int | None = None,
) -> core_pb2.Pod:
    """A pod bound to node-a; a string command is run with ``sh -c``."""
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name = name or f"pod-{next(_counter)}"
    pod.metadata.namespace = namespace
    pod.metadata.uid = str(uuid.uuid4())
    pod.spec.node_name = "node-a"
    pod.spec.restart_policy = restart_policy
    if grace is not None:
        pod.spec.termination_grace_period_seconds = grace
    for target, cmds, prefix in (
        (pod.spec.init_containers, init, "init"),
        (pod.spec.containers, commands, "c"),
    ):
        for index, command in enumerate(cmds):
            container = target.add(name=f"{prefix}{index}", image=image)
            container.command.extend(["sh", "-c", command] if isinstance(command, str) else command)
            for key, value in (env or {}).items():
                container.env.add(name=key, value=value)
    return pod


async def eventually(
    predicate: Callable[[], Any], *, timeout: float = 600.0, every: float = 0.01
) -> Any:
    """Poll ``predicate`` on trio's clock until truthy (fake clock: virtual seconds)."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = predicate()
            if last:
                return last
            await trio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def container_status(status: core_pb2.PodStatus, name: str = "c0") -> core_pb2.ContainerStatus:
    for s in (*status.init_container_statuses, *status.container_statuses):
        if s.name == name:
            return s
    return core_pb2.ContainerStatus()
