"""The node agent: everything a node runs, wired together (``raftsman node-agent``).

:class:`NodeAgent` owns the pieces and starts them in an order that makes each one's
assumptions true:

1. the event recorder and the status manager (they only buffer until the API answers);
2. the Node (:mod:`.node`): registered or adopted -- this yields the ``podCIDR`` the
   pod IPs come from (``<data-dir>/pod-ips.json`` remembers who has which);
3. the ConfigMap and Secret informers, so that pods are built from synced caches;
4. the pod manager (:mod:`.pods`), which first adopts what the runtime already runs;
5. the pods informer (``spec.nodeName=<name>``): its first list creates a worker per
   pod; once synced, containers of pods that are gone are cleaned up;
6. the Lease (:mod:`.lease`) and the periodic node status;
   the emptyDir ``sizeLimit`` eviction monitor (:mod:`.eviction`);
7. the service proxy (:mod:`node_agent.proxy`), fed with every Service and Endpoints.

``run`` reports started (with the agent) once all of that runs. Cancelling it stops the
agent and nothing else: containers keep running and are adopted by the next agent on
the same data directory.

Data directory layout: ``containers/`` (the process runtime's state, created by the
caller), ``pods/<uid>/`` (volumes and container roots), ``logs/`` (container logs,
``<namespace>_<pod>_<uid>/<container>/<attempt>.log``), ``pod-ips.json``.

Many nodes in one process (:mod:`.sim`) share informers: a :class:`NodeAgent` built with
``shared`` informers does not create or run its own and leaves the routing of pod and
ConfigMap/Secret events to its owner.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import metadata
from pathlib import Path

import trio

from actors.client import ApiClient, open_api_client
from actors.controller import EventRecorder, Handlers, Informer
from node_agent.agent.context import PodContext, Timings
from node_agent.agent.eviction import DEFAULT_PERIOD as DEFAULT_EVICTION_PERIOD
from node_agent.agent.eviction import EvictionMonitor
from node_agent.agent.hostinfo import (
    DEFAULT_MAX_PODS,
    HostPressure,
    NoPressure,
    host_capacity,
    system_info,
)
from node_agent.agent.lease import NodeLease
from node_agent.agent.lookup import ContainerRef
from node_agent.agent.node import ENFORCEMENT_ANNOTATION, NodeReporter, NodeSettings, node_labels
from node_agent.agent.pods import PodManager
from node_agent.agent.service import NodeAgentService
from node_agent.agent.status import DEFAULT_MIN_INTERVAL, StatusManager
from node_agent.network import PodIPAllocator, PodIPError
from node_agent.pods.images import ImageCatalog
from node_agent.pods.volumes import PodVolumes
from node_agent.proxy import ServiceProxy
from node_agent.runtime.base import ContainerRuntime
from proto import rpc
from proto.k8s import core_pb2

__all__ = [
    "AgentError",
    "AgentOptions",
    "CacheSources",
    "NodeAgent",
    "SharedInformers",
    "run_node_agent",
]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class AgentError(Exception):
    """The agent cannot run as configured; the message says what to change."""


def _version() -> str:
    try:
        return metadata.version("raftsman")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True, kw_only=True)
class AgentOptions:
    """Tunables of a node agent, Kubernetes' defaults unless said otherwise."""

    cpu: str | None = None
    """Capacity overrides (quantities); None: measured on the host."""
    memory: str | None = None
    max_pods: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra Node labels."""
    lease_period: float = 10.0
    lease_duration: int = 40
    node_status_update_frequency: float = 10.0
    node_status_report_frequency: float = 300.0
    max_backoff: float | None = None
    """Cap of the CrashLoopBackOff / ImagePullBackOff delays (None: Kubernetes' 5 min)."""
    status_min_interval: float = DEFAULT_MIN_INTERVAL
    proxy: bool = True
    """Run the service proxy."""
    host_pressure: bool = True
    """Measure memory/disk/PID pressure on the host (False: never under pressure)."""
    daemon_port: int = 0
    """The port of the agent's gRPC API to report in the Node (0: none)."""
    eviction_period: float = DEFAULT_EVICTION_PERIOD
    """How often emptyDir usage is checked against ``sizeLimit`` (Kubernetes: 10 s)."""

    def timings(self) -> Timings:
        return Timings.local(self.max_backoff)


DEFAULT_OPTIONS = AgentOptions()


@dataclass(frozen=True)
class SharedInformers:
    """Informers owned (created, run, routed) by the caller of several agents."""

    config_maps: Informer
    secrets: Informer


class CacheSources:
    """ConfigMaps and Secrets from informer caches (the pod building blocks' ObjectSource)."""

    def __init__(self, config_maps: Informer, secrets: Informer) -> None:
        self._config_maps = config_maps
        self._secrets = secrets

    async def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None:
        await trio.lowlevel.checkpoint()
        found: core_pb2.ConfigMap | None = self._config_maps.cache.get_by_name(namespace, name)
        return found

    async def secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        await trio.lowlevel.checkpoint()
        found: core_pb2.Secret | None = self._secrets.cache.get_by_name(namespace, name)
        return found


class _Lookup:
    """The agent's :class:`~node_agent.agent.lookup.ContainerLookup`: its pod manager's,
    answering "no such pod" until the pods run."""

    def __init__(self, agent: NodeAgent) -> None:
        self._agent = agent

    def find(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> ContainerRef | None:
        pods = self._agent.pods
        return None if pods is None else pods.find(namespace, pod, container, previous=previous)

    def default_container(self, namespace: str, pod: str) -> str | None:
        pods = self._agent.pods
        return None if pods is None else pods.default_container(namespace, pod)

    def pods(self) -> list[tuple[str, str]]:
        pods = self._agent.pods
        return [] if pods is None else pods.pods()

    def containers(self, namespace: str, pod: str) -> list[tuple[str, ContainerRef]]:
        pods = self._agent.pods
        return [] if pods is None else pods.containers(namespace, pod)


def validate_node_name(name: str) -> None:
    if not name or len(name) > 253 or not _NAME.match(name):
        raise AgentError(
            f"node name {name!r} is not a valid DNS subdomain: lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit, at most 253 characters"
        )


class NodeAgent:
    """One node: its Node, Lease, pods and service proxy; see the module docstring."""

    def __init__(
        self,
        api: ApiClient,
        *,
        name: str,
        runtime: ContainerRuntime,
        data_dir: Path,
        node_address: str = "127.0.0.1",
        options: AgentOptions = DEFAULT_OPTIONS,
        catalog: ImageCatalog | None = None,
        shared: SharedInformers | None = None,
        port: int | None = None,
        registration: trio.CapacityLimiter | None = None,
    ) -> None:
        validate_node_name(name)
        try:
            ipaddress.IPv4Address(node_address)
        except ValueError:
            raise AgentError(
                f"node address must be an IPv4 address, not {node_address!r}"
            ) from None
        self.api = api
        self.name = name
        self.runtime = runtime
        self.data_dir = Path(data_dir)
        self.node_address = node_address
        self.options = options
        self.catalog = catalog or ImageCatalog()
        self.shared = shared
        self.port = port
        self.registration = registration
        self.server: rpc.Server | None = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        capacity = host_capacity(self.data_dir)
        if options.cpu is not None:
            capacity["cpu"] = options.cpu
        if options.memory is not None:
            capacity["memory"] = options.memory
        capacity["pods"] = str(
            options.max_pods if options.max_pods is not None else DEFAULT_MAX_PODS
        )
        info = system_info(runtime=runtime.name, version=_version())
        labels = node_labels(name, os_name=info["operatingSystem"], arch=info["architecture"])
        labels.update(options.labels)
        self.settings = NodeSettings(
            name=name,
            address=node_address,
            capacity=capacity,
            allocatable=dict(capacity),
            labels=labels,
            system_info=info,
            daemon_port=options.daemon_port,
            annotations={ENFORCEMENT_ANNOTATION: runtime.enforcement.value},
        )
        self.reporter = NodeReporter(
            api,
            self.settings,
            pressure=HostPressure(self.data_dir) if options.host_pressure else NoPressure(),
            update_frequency=options.node_status_update_frequency,
            report_frequency=options.node_status_report_frequency,
        )
        self.lease = NodeLease(
            api, name, period=options.lease_period, duration=options.lease_duration
        )
        self.status = StatusManager(api, min_interval=options.status_min_interval)
        self.recorder = EventRecorder(api, "kubelet", host=name)
        self.pods: PodManager | None = None
        self.eviction: EvictionMonitor | None = None
        self.volumes: PodVolumes | None = None
        self.proxy: ServiceProxy | None = None
        self.node: core_pb2.Node | None = None

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    async def run(
        self, *, task_status: trio.TaskStatus[NodeAgent] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the node until cancelled; started once registered and syncing its pods."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.recorder.run)
            await nursery.start(self.status.run)
            if self.port is not None:
                service = NodeAgentService(self.runtime, _Lookup(self), node_name=self.name)
                self.server = await nursery.start(
                    partial(service.serve, host=self.node_address, port=self.port)
                )
                assert self.server is not None
                self.settings = replace(self.settings, daemon_port=self.server.port)
                self.reporter.settings = self.settings
                logger.info("node %s: API on %s", self.name, self.server.address)
            if self.registration is not None:
                async with self.registration:
                    node = await self.reporter.register()
            else:
                node = await self.reporter.register()
            self.node = node
            ips = self._pod_ips(node)
            if self.shared is not None:
                config_maps, secrets = self.shared.config_maps, self.shared.secrets
            else:
                config_maps = Informer(self.api, "configmaps")
                secrets = Informer(self.api, "secrets")
            sources = CacheSources(config_maps, secrets)
            volumes = PodVolumes(
                pods_dir=self.data_dir / "pods",
                sources=sources,
                warn=lambda pod, reason, message: self.recorder.event(
                    pod, "Warning", reason, message
                ),
            )
            self.volumes = volumes
            ctx = PodContext(
                node_name=self.name,
                host_ip=self.node_address,
                runtime=self.runtime,
                status=self.status,
                events=self.recorder,
                api=self.api,
                ips=ips,
                volumes=volumes,
                sources=sources,
                catalog=self.catalog,
                logs_dir=self.logs_dir,
                timings=self.options.timings(),
                node_allocatable=self.settings.allocatable,
            )
            pods = PodManager(ctx)
            self.pods = pods
            if self.shared is None:
                poke = Handlers(
                    on_add=lambda o: pods.poke_namespace(o.metadata.namespace),
                    on_update=lambda _old, o: pods.poke_namespace(o.metadata.namespace),
                    on_delete=lambda o: pods.poke_namespace(o.metadata.namespace),
                )
                config_maps.add_handler(poke)
                secrets.add_handler(poke)
                await nursery.start(config_maps.run)
                await nursery.start(secrets.run)
            await nursery.start(pods.run)
            if self.shared is None:
                informer = Informer(self.api, "pods", field_selector=f"spec.nodeName={self.name}")
                informer.add_handler(
                    Handlers(
                        on_add=pods.pod_changed,
                        on_update=lambda _old, new: pods.pod_changed(new),
                        on_delete=pods.pod_removed,
                    )
                )
                await nursery.start(informer.run)
                pods.synced()
            self.lease.owner_uid = node.metadata.uid
            await nursery.start(self.lease.run)
            await nursery.start(self.reporter.run)
            self.eviction = EvictionMonitor(
                pods=lambda: [worker.pod for worker in pods.workers()],
                usage=volumes,
                evict=pods.evict,
                period=self.options.eviction_period,
            )
            await nursery.start(self.eviction.run)
            if self.options.proxy and self.shared is None:
                await nursery.start(self._run_proxy)
            logger.info("node %s: running (runtime %s)", self.name, self.runtime.name)
            task_status.started(self)

    def _pod_ips(self, node: core_pb2.Node) -> PodIPAllocator:
        cidr = node.spec.pod_cidr
        if not cidr:
            raise AgentError(
                f"node {self.name} has no spec.podCIDR: the API server assigns one to new "
                "Nodes from --cluster-cidr; set spec.podCIDR (a /24 inside 127.0.0.0/8) "
                "on the Node, or delete it and let the agent register it again"
            )
        try:
            return PodIPAllocator(cidr, self.data_dir / "pod-ips.json")
        except PodIPError as exc:
            raise AgentError(f"node {self.name}: {exc}") from None

    async def _run_proxy(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Services and Endpoints informers feeding the service proxy."""
        proxy = ServiceProxy(node_address=self.node_address)
        self.proxy = proxy
        services = Informer(self.api, "services")
        endpoints = Informer(self.api, "endpoints")
        changed = trio.Event()

        def mark(*_: object) -> None:
            changed.set()

        for informer in (services, endpoints):
            informer.add_handler(Handlers(on_add=mark, on_update=mark, on_delete=mark))
        async with trio.open_nursery() as nursery:
            await nursery.start(services.run)
            await nursery.start(endpoints.run)
            proxy.update(services.cache.list(), endpoints.cache.list())
            await nursery.start(proxy.run)
            task_status.started()
            while True:
                await changed.wait()
                changed = trio.Event()
                proxy.update(services.cache.list(), endpoints.cache.list())


async def run_node_agent(
    api_addresses: str | Sequence[str],
    *,
    name: str,
    runtime: ContainerRuntime,
    data_dir: Path,
    node_address: str = "127.0.0.1",
    options: AgentOptions = DEFAULT_OPTIONS,
    catalog: ImageCatalog | None = None,
    port: int | None = 0,
    task_status: trio.TaskStatus[NodeAgent] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one node agent against the API server(s) at ``api_addresses`` until cancelled.

    ``port`` is where the agent's gRPC API listens on ``node_address`` (0: a free port;
    None: no API); the Node reports it in ``status.daemonEndpoints``.
    """
    async with open_api_client(api_addresses) as api:
        agent = NodeAgent(
            api,
            name=name,
            runtime=runtime,
            data_dir=data_dir,
            node_address=node_address,
            options=options,
            catalog=catalog,
            port=port,
        )
        await agent.run(task_status=task_status)
