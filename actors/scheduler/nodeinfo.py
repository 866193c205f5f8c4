"""``NodeInfo``: one node and the aggregate of the pods placed on it.

Filters and scores ask a node the same questions over and over: how much cpu is left,
is host port 8080 free, how many pods of this ReplicaSet run here. :class:`NodeInfo`
keeps the answers as running totals, updated as pods are added and removed, so that every
question is a few integer operations:

* ``allocatable`` / ``allowed_pods`` from the node's ``status.allocatable``;
* ``requested`` -- the sum of its pods' requests, as checked for fit -- and
  ``non_zero_requested`` -- the same with Kubernetes' defaults for missing cpu/memory
  requests, as used for scoring (:mod:`.resources`);
* host ports in use, counted per ``(protocol, port)`` and host IP;
* pods per controller owner (for spreading).

Which pods count is the cache's business (:mod:`.cache`): bound pods, whether running yet
or not, and pods this scheduler has assumed but whose binding it has not yet seen.

A ``NodeInfo`` may exist without its Node object (``node is None``): a pod bound to a
node that is not (or no longer) known still uses resources there. Such a node is never
offered to filters.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .podinfo import WILDCARD_IP, HostPort, PodInfo
from .resources import Resources, node_allocatable

__all__ = ["NodeInfo", "is_ready"]


def is_ready(node: Any) -> bool:
    """The node's ``Ready`` condition is ``True`` (no conditions at all: not ready)."""
    for condition in node.status.conditions:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


class NodeInfo:
    """The node named :attr:`name` and the pods on it (see the module doc)."""

    __slots__ = (
        "name",
        "node",
        "labels",
        "taints",
        "unschedulable",
        "ready",
        "allocatable",
        "allowed_pods",
        "allocatable_error",
        "requested",
        "non_zero_requested",
        "pods",
        "_ports",
        "owners",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.node: Any | None = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Any, ...] = ()
        self.unschedulable = False
        self.ready = False
        self.allocatable = Resources()
        self.allowed_pods = 0
        self.allocatable_error = ""
        self.requested = Resources()
        self.non_zero_requested = Resources()
        self.pods: dict[str, PodInfo] = {}
        # (protocol, port) -> host IP -> number of pods using it
        self._ports: dict[tuple[str, int], Counter[str]] = {}
        self.owners: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<NodeInfo {self.name} pods={len(self.pods)}>"

    # ------------------------------------------------------------------ the node

    def set_node(self, node: Any) -> None:
        """File (a new version of) the Node object."""
        self.node = node
        self.labels = dict(node.metadata.labels)
        self.taints = tuple(node.spec.taints)
        self.unschedulable = bool(node.spec.unschedulable)
        self.ready = is_ready(node)
        try:
            self.allocatable, self.allowed_pods = node_allocatable(node)
            self.allocatable_error = ""
        except ValueError as exc:
            self.allocatable, self.allowed_pods = Resources(), 0
            self.allocatable_error = str(exc)

    def clear_node(self) -> None:
        self.node = None

    # ------------------------------------------------------------------ pods

    def add_pod(self, pod: PodInfo) -> None:
        if pod.key in self.pods:
            self.remove_pod(pod.key)
        self.pods[pod.key] = pod
        self.requested.add(pod.requests)
        self.non_zero_requested.add(pod.non_zero_requests)
        for ip, protocol, port in pod.host_ports:
            self._ports.setdefault((protocol, port), Counter())[ip] += 1
        if pod.owner_uid:
            self.owners[pod.owner_uid] += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.requested.subtract(pod.requests)
        self.non_zero_requested.subtract(pod.non_zero_requests)
        for ip, protocol, port in pod.host_ports:
            users = self._ports.get((protocol, port))
            if users is not None:
                users[ip] -= 1
                if users[ip] <= 0:
                    del users[ip]
                if not users:
                    del self._ports[(protocol, port)]
        if pod.owner_uid:
            self.owners[pod.owner_uid] -= 1
            if self.owners[pod.owner_uid] <= 0:
                del self.owners[pod.owner_uid]
        return pod

    def port_conflicts(self, wanted: HostPort) -> bool:
        """Whether ``(ip, protocol, port)`` clashes with a port in use here: same protocol
        and port, and the same IP or the wildcard on either side."""
        ip, protocol, port = wanted
        users = self._ports.get((protocol, port))
        if not users:
            return False
        if ip == WILDCARD_IP:
            return True
        return ip in users or WILDCARD_IP in users

    @property
    def empty(self) -> bool:
        return self.node is None and not self.pods
