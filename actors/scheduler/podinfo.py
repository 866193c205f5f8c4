"""Everything the scheduler needs to know about one pod, worked out once.

A burst of 1,000 pods on 100 nodes asks 100,000 times "does this pod fit this node?".
The answers need the pod's requests (quantity strings to parse and sum), its host ports,
its affinity terms with their namespaces resolved, its tolerations... Working those out
on every question would dominate the cost, so :class:`PodInfo` does it once per version
of a pod -- when the scheduler picks it from the queue, or when the cache files a bound
pod -- and the plugins read plain attributes.

A ``PodInfo`` is immutable and holds the pod message it was made from: the cache's copy,
never to be mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from actors.controller import object_key, selector_matches

from .resources import Resources, pod_requests

__all__ = ["AffinityTerm", "HostPort", "PodInfo", "WILDCARD_IP"]

WILDCARD_IP = "0.0.0.0"

HostPort = tuple[str, str, int]
"""``(hostIP, protocol, hostPort)``; an empty hostIP is the wildcard ``0.0.0.0``."""

NamespaceLabels = Callable[[str], Mapping[str, str]]
"""The labels of a namespace by name (empty when unknown)."""


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A pod (anti-)affinity term with its namespaces resolved.

    ``selector`` None: the term had no ``labelSelector`` and matches no pod (Kubernetes:
    "if it's null, this PodAffinityTerm matches with no Pods"). ``namespaces``: the names
    listed, or the owning pod's namespace when neither names nor a ``namespaceSelector``
    were given. ``namespace_selector`` None: not set; an empty one selects every namespace.
    """

    topology_key: str
    selector: Any | None
    namespaces: frozenset[str]
    namespace_selector: Any | None
    weight: int = 0

    def matches(self, pod: PodInfo, namespace_labels: NamespaceLabels) -> bool:
        """Whether ``pod`` is one of the pods this term is about."""
        if self.selector is None:
            return False
        if pod.namespace not in self.namespaces:
            if self.namespace_selector is None:
                return False
            if not selector_matches(self.namespace_selector, namespace_labels(pod.namespace)):
                return False
        return selector_matches(self.selector, pod.labels)


def _term(term: Any, namespace: str, weight: int = 0) -> AffinityTerm:
    names = frozenset(term.namespaces)
    ns_selector = term.namespace_selector if term.HasField("namespace_selector") else None
    if not names and ns_selector is None:
        names = frozenset((namespace,))
    return AffinityTerm(
        topology_key=term.topology_key,
        selector=term.label_selector if term.HasField("label_selector") else None,
        namespaces=names,
        namespace_selector=ns_selector,
        weight=weight,
    )


def _controller_uid(pod: Any) -> str:
    for ref in pod.metadata.owner_references:
        if ref.HasField("controller") and ref.controller:
            return str(ref.uid)
    return ""


@dataclass(frozen=True, slots=True, eq=False)
class PodInfo:
    """The facts about ``pod`` that filters and scores read; made by :meth:`of`."""

    key: str
    pod: Any
    namespace: str
    labels: Mapping[str, str]
    requests: Resources
    non_zero_requests: Resources
    host_ports: tuple[HostPort, ...]
    tolerations: tuple[Any, ...]
    node_selector: Mapping[str, str]
    required_node_affinity: Any | None
    preferred_node_affinity: tuple[Any, ...]
    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    owner_uid: str
    """uid of the controller (``ownerReferences[].controller: true``), ``""`` if none."""
    priority: int
    created: float
    """``metadata.creationTimestamp`` in seconds since the epoch (0 when unset)."""

    @classmethod
    def of(cls, pod: Any) -> PodInfo:
        """Work out the facts; :class:`ValueError` names a request that is no quantity."""
        spec = pod.spec
        meta = pod.metadata
        namespace = meta.namespace
        ports: list[HostPort] = []
        for container in (*spec.init_containers, *spec.containers):
            for port in container.ports:
                if port.host_port > 0:
                    ports.append(
                        (port.host_ip or WILDCARD_IP, port.protocol or "TCP", port.host_port)
                    )
        required_node = None
        preferred_node: tuple[Any, ...] = ()
        req_aff: tuple[AffinityTerm, ...] = ()
        req_anti: tuple[AffinityTerm, ...] = ()
        pref_aff: tuple[AffinityTerm, ...] = ()
        pref_anti: tuple[AffinityTerm, ...] = ()
        if spec.HasField("affinity"):
            affinity = spec.affinity
            node_affinity = affinity.node_affinity
            if node_affinity.HasField("required_during_scheduling_ignored_during_execution"):
                required_node = node_affinity.required_during_scheduling_ignored_during_execution
            preferred_node = tuple(
                t
                for t in node_affinity.preferred_during_scheduling_ignored_during_execution
                if t.weight
            )
            pa, paa = affinity.pod_affinity, affinity.pod_anti_affinity
            req_aff = tuple(
                _term(t, namespace) for t in pa.required_during_scheduling_ignored_during_execution
            )
            req_anti = tuple(
                _term(t, namespace) for t in paa.required_during_scheduling_ignored_during_execution
            )
            pref_aff = tuple(
                _term(w.pod_affinity_term, namespace, w.weight)
                for w in pa.preferred_during_scheduling_ignored_during_execution
                if w.weight
            )
            pref_anti = tuple(
                _term(w.pod_affinity_term, namespace, w.weight)
                for w in paa.preferred_during_scheduling_ignored_during_execution
                if w.weight
            )
        created = 0.0
        if meta.HasField("creation_timestamp"):
            ts = meta.creation_timestamp
            created = ts.seconds + ts.nanos / 1e9
        return cls(
            key=object_key(pod),
            pod=pod,
            namespace=namespace,
            labels=meta.labels,
            requests=pod_requests(pod),
            non_zero_requests=pod_requests(pod, non_zero=True),
            host_ports=tuple(ports),
            tolerations=tuple(spec.tolerations),
            node_selector=spec.node_selector,
            required_node_affinity=required_node,
            preferred_node_affinity=preferred_node,
            required_affinity=req_aff,
            required_anti_affinity=req_anti,
            preferred_affinity=pref_aff,
            preferred_anti_affinity=pref_anti,
            owner_uid=_controller_uid(pod),
            priority=spec.priority if spec.HasField("priority") else 0,
            created=created,
        )

    @property
    def name(self) -> str:
        return str(self.pod.metadata.name)

    @property
    def has_required_pod_affinity(self) -> bool:
        return bool(self.required_affinity or self.required_anti_affinity)
