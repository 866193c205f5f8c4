"""What every pod worker of a node shares: the node's services, behind small seams.

A :class:`PodContext` is built once per node by the agent and handed to each pod worker.
Every collaborator is a Protocol, so a worker runs against the real API server and
runtime in the agent, and against fakes (and trio's fake clock) in unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from actors.client import Deleted
from node_agent.agent.backoff import DEFAULT_BACKOFF, BackoffConfig
from node_agent.pods.images import ImageCatalog
from node_agent.pods.sources import ObjectSource
from node_agent.pods.volumes import PodVolumes
from node_agent.runtime.base import ContainerRuntime
from proto.k8s import core_pb2

__all__ = ["EventSink", "PodContext", "PodDeleter", "PodIPs", "StatusSink", "Timings"]


class StatusSink(Protocol):
    """Where computed pod statuses go (:class:`~node_agent.agent.status.StatusManager`)."""

    def set(
        self, pod: core_pb2.Pod, status: core_pb2.PodStatus, *, force: bool = False
    ) -> None: ...

    def forget(self, uid: str) -> None: ...


class EventSink(Protocol):
    """Events about pods (:class:`~actors.controller.EventRecorder`); never blocks."""

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None: ...


class PodDeleter(Protocol):
    """The final delete of a pod whose containers are gone (the API client)."""

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
    ) -> Deleted: ...


class PodIPs(Protocol):
    """Pod addresses (:class:`~node_agent.network.PodIPAllocator`)."""

    def allocate(self, pod_uid: str) -> str: ...

    def release(self, pod_uid: str) -> None: ...

    def lookup(self, pod_uid: str) -> str | None: ...

    def allocations(self) -> dict[str, str]: ...


@dataclass(frozen=True, kw_only=True)
class Timings:
    """How pod workers pace themselves (seconds)."""

    backoff: BackoffConfig = DEFAULT_BACKOFF
    """CrashLoopBackOff and ImagePullBackOff."""
    config_retry: float = 10.0
    """Retry of a container that cannot be configured (missing ConfigMap, volume)
    when nothing it depends on changes meanwhile."""
    resync: float = 60.0
    """Every pod is synced at least this often, changes or not."""
    force_grace: float = 2.0
    """Grace for containers of a pod removed from the API without waiting for them
    (force deletion), as the kubelet's minimum grace period."""
    orphan_grace: float = 2.0
    """Grace for containers of pods this node no longer has (found on restart)."""

    @classmethod
    def local(cls, max_backoff: float | None) -> Timings:
        """Kubernetes' timings with restart backoffs capped at ``max_backoff``."""
        backoff = BackoffConfig.capped(max_backoff)
        return cls(backoff=backoff, config_retry=min(10.0, max(backoff.max, 0.5)))


@dataclass(kw_only=True)
class PodContext:
    """A node's services for its pod workers (one per node)."""

    node_name: str
    host_ip: str
    runtime: ContainerRuntime
    status: StatusSink
    events: EventSink
    api: PodDeleter
    ips: PodIPs
    volumes: PodVolumes
    sources: ObjectSource
    catalog: ImageCatalog
    logs_dir: Path
    timings: Timings = field(default_factory=Timings)
    node_allocatable: Mapping[str, str] = field(default_factory=dict)
