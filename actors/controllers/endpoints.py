"""The Endpoints controller: for every Service with a selector, the addresses behind it.

A Service names pods by a label selector; clients (the service proxy of every node
agent) need the other direction: which ``ip:port`` pairs serve it *now*. This loop keeps,
for every Service that has a selector, an Endpoints object of the same name and
namespace, as Kubernetes' endpoints controller does:

* every pod in the namespace that the selector matches, has an IP, is not Succeeded or
  Failed, and is not being deleted (terminating pods are kept only when the Service sets
  ``publishNotReadyAddresses``) becomes an address: ``ip``, ``nodeName``, ``targetRef``
  to the pod, and ``hostname`` when the pod's ``subdomain`` is the Service's name;
* ready pods (condition Ready=True, or any pod when ``publishNotReadyAddresses``) go to
  ``addresses``, the others to ``notReadyAddresses``;
* each Service port resolves per pod: a numeric ``targetPort`` as is, a named one through
  the pod's container ports (same name and protocol). A pod whose containers do not name
  the port is left out of that port -- not out of the others;
* addresses with the same resolved port set share one subset (Kubernetes'
  ``RepackSubsets``); everything is sorted, so equal content compares equal and an
  unchanged Endpoints is never rewritten;
* a headless Service without ports gets port-less subsets; any other Service without
  ports gets none.

Services without a selector are left alone: their Endpoints are the user's. When a
Service is deleted, the Endpoints this controller wrote for it (marked with the
``endpoints.kubernetes.io/last-change-trigger-time`` annotation, as Kubernetes marks
them) is deleted too; one it did not write is not touched.

Reacting fast
    A pod change enqueues only the Services that select the pod. Services are indexed by
    the ``key=value`` pairs of their selectors, so the candidates for a pod are found
    by its labels (a dictionary lookup per label), then checked in full. A pod update
    that changes nothing the Endpoints depend on (a container restart count, say)
    enqueues nothing. A readiness flip thus reaches the Endpoints in one watch event, one
    reconcile and one write.

Consistency
    ``reconcile`` reads the caches, so it may write a state a moment old; the watch event
    that made it old enqueues the Service again, and the next pass catches up
    (level-triggered). Writes carry the cached resourceVersion: a concurrent writer makes
    ours fail with a conflict, retried with backoff on fresh state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from actors.client import AlreadyExists, Conflict, Forbidden, NotFound
from actors.controller import Controller, Handlers, Informer, TransientError, object_key
from actors.controllers.context import ControllerContext
from actors.controllers.podcontrol import is_pod_ready
from proto.k8s import core_pb2, kinds

__all__ = [
    "MANAGED_ANNOTATION",
    "EndpointsController",
    "build_subsets",
    "desired_endpoints",
    "new_controller",
    "resolve_port",
    "same_content",
    "selects",
    "should_include",
]

logger = logging.getLogger(__name__)

MANAGED_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
"""Set on every Endpoints this controller writes (when it last changed it)."""
HEADLESS_LABEL = "service.kubernetes.io/headless"
SELECTOR_INDEX = "endpoints/selector-pair"

_ENDPOINTS = kinds.by_kind("Endpoints")


# ------------------------------------------------------------------------ pure rules


def selects(service: Any, labels: Mapping[str, str]) -> bool:
    """A Service's (non-empty) selector matches ``labels``."""
    selector = service.spec.selector
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def should_include(pod: Any, *, publish_not_ready: bool) -> bool:
    """Whether ``pod`` appears in Endpoints at all (Kubernetes' ShouldPodBeInEndpoints)."""
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    if not pod.status.pod_ip:
        return False
    return publish_not_ready or not pod.metadata.HasField("deletion_timestamp")


def resolve_port(pod: Any, service_port: Any) -> int | None:
    """The pod's port for ``service_port``: a numeric targetPort as is, a named one from
    the container port of that name and protocol; None when no container names it."""
    target = service_port.target_port
    if target.WhichOneof("value") == "str_val":
        protocol = service_port.protocol or "TCP"
        for container in pod.spec.containers:
            for port in container.ports:
                if port.name == target.str_val and (port.protocol or "TCP") == protocol:
                    return int(port.container_port)
        return None
    return int(target.int_val) or int(service_port.port)


def _address(pod: Any, service: Any) -> core_pb2.EndpointAddress:
    address = core_pb2.EndpointAddress(ip=pod.status.pod_ip)
    if pod.spec.node_name:
        address.node_name = pod.spec.node_name
    ref = address.target_ref
    ref.kind = "Pod"
    ref.namespace = pod.metadata.namespace
    ref.name = pod.metadata.name
    ref.uid = pod.metadata.uid
    if (
        pod.spec.hostname
        and pod.spec.subdomain == service.metadata.name
        and pod.metadata.namespace == service.metadata.namespace
    ):
        address.hostname = pod.spec.hostname
    return address


PortKey = tuple[str, int, str, str]  # name, port, protocol, appProtocol


def _pod_ports(pod: Any, service: Any) -> tuple[PortKey, ...]:
    out: list[PortKey] = []
    for sp in service.spec.ports:
        number = resolve_port(pod, sp)
        if number is None:
            logger.debug(
                "endpoints %s: pod %s has no port named %r",
                object_key(service),
                object_key(pod),
                sp.target_port.str_val,
            )
            continue
        out.append((sp.name, number, sp.protocol or "TCP", sp.app_protocol))
    return tuple(sorted(set(out)))


def _address_order(a: core_pb2.EndpointAddress) -> tuple[str, str, str]:
    return (a.ip, a.target_ref.name, a.target_ref.uid)


def build_subsets(service: Any, pods: Iterable[Any]) -> list[core_pb2.EndpointSubset]:
    """The subsets of ``service``'s Endpoints for the (already selected) ``pods``."""
    publish = service.spec.publish_not_ready_addresses
    headless = service.spec.cluster_ip == "None"
    if not service.spec.ports and not headless:
        return []
    groups: dict[tuple[PortKey, ...], tuple[list[Any], list[Any]]] = {}
    for pod in pods:
        if not should_include(pod, publish_not_ready=publish):
            continue
        ports = _pod_ports(pod, service)
        if service.spec.ports and not ports:
            continue
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if publish or is_pod_ready(pod) else not_ready).append(_address(pod, service))
    subsets = []
    for ports in sorted(groups):
        ready, not_ready = groups[ports]
        subset = core_pb2.EndpointSubset()
        subset.addresses.extend(sorted(ready, key=_address_order))
        subset.not_ready_addresses.extend(sorted(not_ready, key=_address_order))
        for name, number, protocol, app_protocol in ports:
            subset.ports.add(name=name, port=number, protocol=protocol, app_protocol=app_protocol)
        subsets.append(subset)
    return subsets


def desired_endpoints(service: Any, subsets: Sequence[Any]) -> Any:
    """The Endpoints ``service`` should have (without resourceVersion or annotation)."""
    ep: Any = _ENDPOINTS.new()
    ep.metadata.name = service.metadata.name
    ep.metadata.namespace = service.metadata.namespace
    ep.metadata.labels.update(service.metadata.labels)
    if service.spec.cluster_ip == "None":
        ep.metadata.labels[HEADLESS_LABEL] = ""
    else:
        ep.metadata.labels.pop(HEADLESS_LABEL, None)
    ep.subsets.extend(subsets)
    return ep


def same_content(current: Any, desired: Any) -> bool:
    """Equal subsets and labels, and marked as ours: nothing to write."""
    return (
        MANAGED_ANNOTATION in current.metadata.annotations
        and dict(current.metadata.labels) == dict(desired.metadata.labels)
        and list(current.subsets) == list(desired.subsets)
    )


def _selector_pairs(service: Any) -> list[str]:
    return [f"{k}={v}" for k, v in service.spec.selector.items()]


def _pod_fingerprint(pod: Any) -> tuple[Any, ...]:
    """What of a pod the Endpoints depend on; an update that keeps it enqueues nothing."""
    ports = tuple(
        (p.name, p.container_port, p.protocol) for c in pod.spec.containers for p in c.ports
    )
    return (
        tuple(sorted(pod.metadata.labels.items())),
        pod.status.pod_ip,
        pod.status.phase,
        is_pod_ready(pod),
        pod.metadata.HasField("deletion_timestamp"),
        pod.spec.node_name,
        pod.spec.hostname,
        pod.spec.subdomain,
        ports,
    )


def ensure_index(informer: Informer, name: str, func: Any) -> None:
    """Add an index to a (possibly shared) informer unless one of that name is there."""
    try:
        informer.add_indexer(name, func)
    except ValueError:
        pass


# ------------------------------------------------------------------------ the loop


class EndpointsController(Controller):
    """The ``endpoints`` loop: keys are Service keys (``namespace/name``)."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.api = ctx.api
        self.services = ctx.informers.informer("Service")
        self.pods = ctx.informers.informer("Pod")
        self.endpoints = ctx.informers.informer("Endpoints")
        super().__init__(
            "endpoints",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.services,
        )
        ensure_index(self.services, SELECTOR_INDEX, _selector_pairs)
        self.watch(self.endpoints)
        self.pods.add_handler(
            Handlers(
                on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed
            )
        )
        self.depends_on([self.pods])

    # ------------------------------------------------------------------ handlers

    def services_selecting(self, pod: Any) -> list[str]:
        """Keys of the Services in ``pod``'s namespace whose selectors match it."""
        labels = pod.metadata.labels
        found: set[str] = set()
        for k, v in labels.items():
            for service in self.services.cache.by_index(SELECTOR_INDEX, f"{k}={v}"):
                if service.metadata.namespace == pod.metadata.namespace and selects(
                    service, labels
                ):
                    found.add(object_key(service))
        return sorted(found)

    def _pod_changed(self, pod: Any) -> None:
        for key in self.services_selecting(pod):
            self.enqueue(key)

    def _pod_updated(self, old: Any, new: Any) -> None:
        if _pod_fingerprint(old) == _pod_fingerprint(new):
            return
        keys = set(self.services_selecting(new))
        if old.metadata.labels != new.metadata.labels:
            keys.update(self.services_selecting(old))
        for key in sorted(keys):
            self.enqueue(key)

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> None:
        service = self.services.cache.get(key)
        current = self.endpoints.cache.get(key)
        if service is None:
            if current is not None and MANAGED_ANNOTATION in current.metadata.annotations:
                await self._delete(current)
            return
        if not service.spec.selector:
            return  # user-managed Endpoints
        namespace = service.metadata.namespace
        pods = [p for p in self.pods.cache.list(namespace) if selects(service, p.metadata.labels)]
        desired = desired_endpoints(service, build_subsets(service, pods))
        if current is not None and same_content(current, desired):
            return
        await self._write(current, desired)

    async def _write(self, current: Any | None, desired: Any) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            if current is None:
                desired.metadata.annotations[MANAGED_ANNOTATION] = stamp
                await self.api.create(desired)
                return
            updated = type(current)()
            updated.CopyFrom(current)
            updated.metadata.labels.clear()
            updated.metadata.labels.update(desired.metadata.labels)
            updated.metadata.annotations[MANAGED_ANNOTATION] = stamp
            del updated.subsets[:]
            updated.subsets.extend(desired.subsets)
            await self.api.update(updated)
        except Forbidden as exc:
            # The namespace is being deleted: nothing more to publish there.
            logger.debug("endpoints %s: %s", object_key(desired), exc)
        except (AlreadyExists, Conflict, NotFound) as exc:
            raise TransientError(f"endpoints {object_key(desired)}: {exc}") from exc

    async def _delete(self, endpoints: Any) -> None:
        try:
            await self.api.delete(
                "Endpoints",
                endpoints.metadata.name,
                namespace=endpoints.metadata.namespace,
                uid=endpoints.metadata.uid,
            )
        except (NotFound, Conflict):
            pass  # gone already, or replaced by another incarnation


def new_controller(ctx: ControllerContext) -> Controller:
    """The Endpoints controller on ``ctx``'s shared informers."""
    return EndpointsController(ctx)
