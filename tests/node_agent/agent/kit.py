"""Fakes and builders for pod worker and pod manager tests: the seams of :class:`PodContext`.

The worker runs for real on the sim runtime (trio's clock), real volumes and a real pod IP
allocator under a temporary directory; only the API server side is faked: statuses and
events are recorded, the final delete is recorded. :class:`ScriptedRuntime` is the sim
runtime with exec probes and hooks whose outcome the test sets. :func:`start_worker` and
:func:`start_manager` run a worker or a pod manager on a :class:`Kit`; :func:`make_pod`
and :func:`deleting` build the pods they are given.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from actors.client import Deleted
from node_agent.agent.context import PodContext, Timings
from node_agent.agent.pods import PodManager
from node_agent.agent.podworker import PodWorker
from node_agent.network import PodIPAllocator
from node_agent.pods.images import ImageCatalog
from node_agent.pods.sources import StaticSources
from node_agent.pods.volumes import PodVolumes
from node_agent.runtime.base import ContainerId, ContainerRuntime, OutputSink
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


class ScriptedRuntime(SimRuntime):
    """exec of ``["check", <name>]`` exits with ``codes[name]`` (default 0); every exec is logged."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: dict[str, int] = {}
        self.execs: list[tuple[float, tuple[str, ...]]] = []

    async def exec(
        self,
        container_id: ContainerId,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None = None,
        stdout: OutputSink | None = None,
        stderr: OutputSink | None = None,
    ) -> int:
        self.execs.append((trio.current_time(), tuple(argv)))
        if len(argv) == 2 and argv[0] == "check":
            await trio.lowlevel.checkpoint()
            if stdout is not None:
                await stdout(f"check {argv[1]}".encode())
            return self.codes.get(argv[1], 0)
        return await super().exec(container_id, argv, stdin=stdin, stdout=stdout, stderr=stderr)


def probe(target: core_pb2.Probe, name: str, *, period: int = 1, failure: int = 3) -> None:
    """Make ``target`` an exec probe of :class:`ScriptedRuntime`'s ``check <name>``."""
    target.exec.command.extend(["check", name])
    target.period_seconds = period
    target.failure_threshold = failure


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


async def start_worker(nursery: trio.Nursery, kit: Kit, pod: core_pb2.Pod) -> PodWorker:
    """Run a pod worker for ``pod``, adopting what the runtime already runs of it."""
    adopted = [i for i in await kit.runtime.containers() if i.spec.pod_uid == pod.metadata.uid]
    worker = PodWorker(kit.ctx, pod, adopted=adopted)
    nursery.start_soon(worker.run)
    return worker


async def start_manager(nursery: trio.Nursery, kit: Kit, *listed: core_pb2.Pod) -> PodManager:
    """Run a pod manager on ``kit`` whose first list of pods is ``listed``."""
    manager = PodManager(kit.ctx)
    await nursery.start(manager.run)
    for pod in listed:
        manager.pod_changed(pod)
    manager.synced()
    return manager


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


def deleting(pod: core_pb2.Pod, grace: int) -> core_pb2.Pod:
    """A copy of ``pod`` as the API server shows it once deleted with ``grace`` seconds."""
    copy = core_pb2.Pod()
    copy.CopyFrom(pod)
    copy.metadata.deletion_timestamp.GetCurrentTime()
    copy.metadata.deletion_grace_period_seconds = grace
    return copy


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
