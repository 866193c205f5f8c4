"""The Node object of this agent: registration, re-adoption and status reports.

Registration. On start the agent gets its Node; if there is none it creates it, with its
labels (``kubernetes.io/hostname``, ``kubernetes.io/os``, ``kubernetes.io/arch`` and
their ``beta.`` forms), capacity and allocatable, addresses (``InternalIP`` = the node
address, ``Hostname`` = the node name), system info, the port of its gRPC API
(``status.daemonEndpoints.kubeletEndpoint.Port``) and its conditions. A Node that exists
already (an agent restart, or created beforehand by a user) is *adopted*: the agent's
labels and annotations are merged in, everything else in ``metadata`` and ``spec`` --
taints, ``unschedulable``, the ``podCIDR`` the API server gave it -- is left as it is,
and the status is rewritten. The API server gives a new Node a ``podCIDR``; the agent
hands out its pods' IPs from it.

Status. Every ``update_frequency`` seconds (10 s, Kubernetes' ``nodeStatusUpdateFrequency``)
the agent reads its Node and compares the status it would report with the one stored;
it writes when they differ (a condition flipped, capacity changed, another component
marked the node ``Ready=Unknown``) or when ``report_frequency`` (5 min, Kubernetes'
``nodeStatusReportFrequency``) has passed since the last write. Liveness is the Lease's
job (:mod:`.lease`), so an unchanged node costs one read per period, not a write. A Node
deleted while the agent runs is registered again.

Conditions, with the kubelet's reasons and messages: ``MemoryPressure``,
``DiskPressure``, ``PIDPressure`` (from :mod:`.hostinfo`) and ``Ready`` (True,
``KubeletReady``, while the agent runs). ``lastHeartbeatTime`` is the time of the write,
``lastTransitionTime`` moves only when the condition's status does; conditions of other
types are kept. The node also carries the annotation ``raftsman.io/limits-enforcement``:
how its runtime enforces cpu and memory limits (``cgroup v2``, ``memory: watchdog ...``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio
from google.protobuf import json_format

from actors.client import AlreadyExists, ApiClient, ApiError, Conflict, NotFound
from node_agent.agent.hostinfo import NoPressure, Pressure, PressureSource
from proto.k8s import core_pb2, meta_pb2

__all__ = ["ENFORCEMENT_ANNOTATION", "NodeReporter", "NodeSettings", "node_labels"]

logger = logging.getLogger(__name__)

ENFORCEMENT_ANNOTATION = "raftsman.io/limits-enforcement"
_RETRY_INITIAL = 0.2
_RETRY_MAX = 7.0


def node_labels(name: str, *, os_name: str, arch: str) -> dict[str, str]:
    """The well-known labels the kubelet puts on its Node."""
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": os_name,
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": os_name,
        "beta.kubernetes.io/arch": arch,
    }


@dataclass(frozen=True, kw_only=True)
class NodeSettings:
    """What the agent reports about its node."""

    name: str
    address: str
    capacity: Mapping[str, str]
    allocatable: Mapping[str, str]
    labels: Mapping[str, str]
    system_info: Mapping[str, str]
    daemon_port: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)


_CONDITIONS = (
    (
        "MemoryPressure",
        "memory",
        ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ),
    (
        "DiskPressure",
        "disk",
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    ),
    (
        "PIDPressure",
        "pids",
        ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
    ),
)
_OWNED = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")


def _conditions(pressure: Pressure) -> list[meta_pb2.Condition]:
    out = []
    for type_, attribute, fine, short in _CONDITIONS:
        under = bool(getattr(pressure, attribute))
        reason, message = short if under else fine
        out.append(
            meta_pb2.Condition(
                type=type_, status="True" if under else "False", reason=reason, message=message
            )
        )
    out.append(
        meta_pb2.Condition(
            type="Ready",
            status="True",
            reason="KubeletReady",
            message="kubelet is posting ready status",
        )
    )
    return out


def _comparable(status: core_pb2.NodeStatus) -> core_pb2.NodeStatus:
    """``status`` without heartbeat and transition times."""
    out = core_pb2.NodeStatus()
    out.CopyFrom(status)
    for condition in out.conditions:
        condition.ClearField("last_heartbeat_time")
        condition.ClearField("last_transition_time")
    return out


class NodeReporter:
    """Registers the Node and keeps its status current (see the module docstring)."""

    def __init__(
        self,
        api: ApiClient,
        settings: NodeSettings,
        *,
        pressure: PressureSource | None = None,
        update_frequency: float = 10.0,
        report_frequency: float = 300.0,
    ) -> None:
        for name, value in (
            ("update_frequency", update_frequency),
            ("report_frequency", report_frequency),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive seconds, not {value!r}")
        self.api = api
        self.settings = settings
        self.pressure = pressure or NoPressure()
        self.update_frequency = update_frequency
        self.report_frequency = report_frequency
        self.node: core_pb2.Node | None = None
        self.writes = 0
        self._last_write = -math.inf

    @property
    def name(self) -> str:
        return self.settings.name

    # ------------------------------------------------------------------ status

    def desired_status(
        self, current: core_pb2.NodeStatus | None, now: datetime
    ) -> core_pb2.NodeStatus:
        """The status to report, given the stored one (for transition times, foreign conditions)."""
        s = self.settings
        status = core_pb2.NodeStatus(
            capacity=dict(s.capacity),
            allocatable=dict(s.allocatable),
            addresses=[
                core_pb2.NodeAddress(type="InternalIP", address=s.address),
                core_pb2.NodeAddress(type="Hostname", address=s.name),
            ],
        )
        json_format.ParseDict(dict(s.system_info), status.node_info)
        if s.daemon_port:
            status.daemon_endpoints.kubelet_endpoint.port = s.daemon_port
        old = {c.type: c for c in (current.conditions if current is not None else [])}
        for condition in _conditions(self.pressure.read()):
            before = old.get(condition.type)
            if before is not None and before.status == condition.status:
                condition.last_transition_time.CopyFrom(before.last_transition_time)
            else:
                condition.last_transition_time.FromDatetime(now)
            condition.last_heartbeat_time.FromDatetime(now)
            status.conditions.append(condition)
        if current is not None:
            status.conditions.extend(c for c in current.conditions if c.type not in _OWNED)
            status.images.extend(current.images)
        return status

    def _new_node(self, now: datetime) -> core_pb2.Node:
        node = core_pb2.Node(api_version="v1", kind="Node")
        node.metadata.name = self.name
        node.metadata.labels.update(self.settings.labels)
        node.metadata.annotations.update(self.settings.annotations)
        node.status.CopyFrom(self.desired_status(None, now))
        return node

    async def register(self) -> core_pb2.Node:
        """Create or adopt the Node; retries until the API server answers. Returns it."""
        delay = _RETRY_INITIAL
        while True:
            try:
                node = await self._register_once()
            except ApiError as exc:
                logger.warning(
                    "registering node %s failed (retrying in %.1fs): %s", self.name, delay, exc
                )
                await trio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            if node is not None:
                self.node = node
                return node

    async def _register_once(self) -> core_pb2.Node | None:
        now = datetime.now(UTC)
        try:
            node = await self.api.get(core_pb2.Node, self.name)
        except NotFound:
            try:
                created = await self.api.create(self._new_node(now))
            except AlreadyExists:
                return None
            self._last_write = trio.current_time()
            self.writes += 1
            logger.info("registered node %s (podCIDR %s)", self.name, created.spec.pod_cidr)
            return created
        labels_missing = any(
            node.metadata.labels.get(k) != v for k, v in self.settings.labels.items()
        )
        annotations_missing = any(
            node.metadata.annotations.get(k) != v for k, v in self.settings.annotations.items()
        )
        if labels_missing or annotations_missing:
            node.metadata.labels.update(self.settings.labels)
            node.metadata.annotations.update(self.settings.annotations)
            try:
                node = await self.api.update(node)
            except Conflict:
                return None
        written = await self._write_status(node, force=True)
        logger.info("adopted node %s (podCIDR %s)", self.name, node.spec.pod_cidr)
        return written

    async def _write_status(self, node: core_pb2.Node, *, force: bool) -> core_pb2.Node:
        now = datetime.now(UTC)
        desired = self.desired_status(node.status, now)
        due = trio.current_time() - self._last_write >= self.report_frequency
        if not force and not due and _comparable(desired) == _comparable(node.status):
            return node
        update = core_pb2.Node(api_version="v1", kind="Node")
        update.metadata.name = node.metadata.name
        update.metadata.uid = node.metadata.uid
        update.status.CopyFrom(desired)
        written = await self.api.update_status(update)
        self._last_write = trio.current_time()
        self.writes += 1
        return written

    async def sync_status(self) -> None:
        """One status round: read the Node, write if needed; re-register if it is gone."""
        try:
            node = await self.api.get(core_pb2.Node, self.name)
        except NotFound:
            logger.warning("node %s was deleted; registering it again", self.name)
            self.node = await self.register()
            return
        try:
            self.node = await self._write_status(node, force=False)
        except (NotFound, Conflict):
            self.node = await self.register()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the status current until cancelled (after :meth:`register`)."""
        task_status.started()
        while True:
            await trio.sleep(self.update_frequency)
            try:
                await self.sync_status()
            except ApiError as exc:
                logger.warning("updating the status of node %s failed: %s", self.name, exc)
