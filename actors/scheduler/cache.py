"""``SchedulerCache``: the nodes and where every pod sits, including pods not bound yet.

The problem
    The scheduler decides in memory and writes the decision (a Binding) asynchronously, so
    that one slow write does not stall the next decision. Between the decision and the
    moment the bound pod comes back through the watch, the informer's cache still shows
    the pod unbound. Deciding from the informer alone, a burst of 30 one-cpu pods on three
    ten-cpu nodes would all see three empty nodes and over-commit them.

The design (Kubernetes' scheduler cache)
    Every pod placed on a node is filed in that node's :class:`~.nodeinfo.NodeInfo`, in one
    of two states:

    * **bound** -- the watch showed it with ``spec.nodeName``; it counts until the watch
      shows it deleted or finished (``Succeeded``/``Failed``);
    * **assumed** -- this scheduler chose a node and is binding it (:meth:`assume`). When
      the bind call returns, :meth:`finish_binding` starts a deadline (``assumed_ttl``);
      when the bound pod then arrives from the watch (:meth:`add_pod` /
      :meth:`update_pod`) it *replaces* the assumption -- on whichever node the store
      says, never counted twice. A failed bind is undone with :meth:`forget`. An assumed
      pod whose binding never shows up by the deadline is dropped by
      :meth:`cleanup_expired`, so a lost watch event cannot hold resources forever.

    Unbound pods are not in this cache (they are in the scheduling queue).

Guarantees
    * A pod's requests count on exactly one node at any time, or on none.
    * Operations are synchronous and the cache is used from one trio run: a scheduling
      decision that reads it and assumes its result runs without a checkpoint between,
      so no event can slip in.
    * Times are passed in (``now``), so the expiry is tested without a clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .nodeinfo import NodeInfo
from .podinfo import PodInfo

__all__ = ["DEFAULT_ASSUMED_TTL", "SchedulerCache", "TERMINAL_PHASES"]

logger = logging.getLogger(__name__)

DEFAULT_ASSUMED_TTL = 30.0
"""Seconds an assumed pod whose bind succeeded waits for the watch to show it bound."""

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
"""A pod in these phases has finished: it holds no resources (Kubernetes' scheduler does
not even watch such pods)."""

_EMPTY: Mapping[str, str] = {}


@dataclass(slots=True)
class _Placed:
    info: PodInfo
    node: str
    assumed: bool
    deadline: float = math.inf
    """For an assumed pod whose binding finished: when it expires."""


def _pod_info(pod: Any) -> PodInfo:
    try:
        return PodInfo.of(pod)
    except ValueError as exc:
        # The API server validates quantities, so this is a pod it never saw; count it as
        # requesting nothing rather than failing the watch.
        logger.warning("pod %s/%s: %s; counting it as requesting nothing", *_name(pod), exc)
        bare = type(pod)()
        bare.CopyFrom(pod)
        for container in (*bare.spec.containers, *bare.spec.init_containers):
            container.resources.ClearField("requests")
        return PodInfo.of(bare)


def _name(pod: Any) -> tuple[str, str]:
    return pod.metadata.namespace, pod.metadata.name


class SchedulerCache:
    """Nodes and placed pods; see the module doc."""

    def __init__(self, *, assumed_ttl: float = DEFAULT_ASSUMED_TTL) -> None:
        if not assumed_ttl > 0:
            raise ValueError(
                f"assumed_ttl must be a positive number of seconds, not {assumed_ttl!r}"
            )
        self.assumed_ttl = assumed_ttl
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _Placed] = {}
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._node_list: list[NodeInfo] | None = None
        # Placed pods with required anti-affinity -> their node: every decision checks
        # them, so they are indexed rather than found by walking every node.
        self._anti_affinity: dict[str, str] = {}
        self.expired = 0
        """How many assumed pods expired (their binding never showed up)."""

    # ------------------------------------------------------------------ reads

    @property
    def nodes(self) -> list[NodeInfo]:
        """Nodes whose Node object is known, in name order."""
        if self._node_list is None:
            self._node_list = [
                info for _, info in sorted(self._nodes.items()) if info.node is not None
            ]
        return self._node_list

    def node(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def pods(self) -> Iterator[tuple[PodInfo, NodeInfo]]:
        """Every placed pod (bound or assumed) with its node."""
        for info in self._nodes.values():
            for pod in info.pods.values():
                yield pod, info

    def anti_affinity_pods(self) -> Iterator[tuple[PodInfo, NodeInfo]]:
        """Placed pods that carry required pod anti-affinity terms, with their nodes."""
        for key, node in self._anti_affinity.items():
            yield self._pods[key].info, self._nodes[node]

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self._namespaces.get(namespace, _EMPTY)

    def is_assumed(self, key: str) -> bool:
        placed = self._pods.get(key)
        return placed is not None and placed.assumed

    def node_of(self, key: str) -> str | None:
        placed = self._pods.get(key)
        return None if placed is None else placed.node

    def __len__(self) -> int:
        return len(self._pods)

    # ------------------------------------------------------------------ nodes

    def add_node(self, node: Any) -> NodeInfo:
        """File a new or changed Node object."""
        name = node.metadata.name
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        if info.node is None:
            self._node_list = None
        info.set_node(node)
        if info.allocatable_error:
            logger.warning("node %s: status.allocatable: %s", name, info.allocatable_error)
        return info

    update_node = add_node

    def remove_node(self, name: str) -> None:
        """Forget the Node object; pods still bound there keep counting until deleted."""
        info = self._nodes.get(name)
        if info is None:
            return
        info.clear_node()
        self._node_list = None
        if info.empty:
            del self._nodes[name]

    # ------------------------------------------------------------------ namespaces

    def set_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        self._namespaces[name] = dict(labels)

    def remove_namespace(self, name: str) -> None:
        self._namespaces.pop(name, None)

    # ------------------------------------------------------------------ bound pods

    def add_pod(self, pod: Any) -> None:
        """File a pod the watch shows bound (``spec.nodeName`` set); confirms an assumption.

        A finished pod (``Succeeded``/``Failed``) is removed instead.
        """
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if pod.status.phase in TERMINAL_PHASES or not pod.spec.node_name:
            self.remove_pod(key)
            return
        placed = self._pods.get(key)
        if placed is not None:
            self._unplace(key, placed)
        self._place(_Placed(info=_pod_info(pod), node=pod.spec.node_name, assumed=False))

    update_pod = add_pod

    def remove_pod(self, key: str) -> None:
        """The pod is gone (deleted or finished): free what it held, assumed or bound."""
        placed = self._pods.get(key)
        if placed is not None:
            self._unplace(key, placed)

    # ------------------------------------------------------------------ assumptions

    def assume(self, pod: PodInfo, node: str) -> None:
        """Count ``pod`` on ``node`` before its binding is seen; ValueError if it is
        already placed (bound, or assumed by an earlier decision)."""
        if pod.key in self._pods:
            raise ValueError(f"pod {pod.key} is already placed on {self._pods[pod.key].node}")
        self._place(_Placed(info=pod, node=node, assumed=True))

    def finish_binding(self, key: str, *, now: float) -> None:
        """The bind call returned: the assumption expires ``assumed_ttl`` after ``now``
        unless the watch confirms it first."""
        placed = self._pods.get(key)
        if placed is not None and placed.assumed:
            placed.deadline = now + self.assumed_ttl

    def forget(self, key: str) -> None:
        """Undo an assumption (the bind failed); a bound pod is left alone."""
        placed = self._pods.get(key)
        if placed is not None and placed.assumed:
            self._unplace(key, placed)

    def cleanup_expired(self, *, now: float) -> list[str]:
        """Drop assumed pods whose deadline has passed; their keys."""
        gone = [k for k, p in self._pods.items() if p.assumed and p.deadline <= now]
        for key in gone:
            logger.warning("assumed pod %s expired: its binding never showed up", key)
            self._unplace(key, self._pods[key])
        self.expired += len(gone)
        return gone

    # ------------------------------------------------------------------ internals

    def _place(self, placed: _Placed) -> None:
        info = self._nodes.get(placed.node)
        if info is None:
            info = self._nodes[placed.node] = NodeInfo(placed.node)
        info.add_pod(placed.info)
        self._pods[placed.info.key] = placed
        if placed.info.required_anti_affinity:
            self._anti_affinity[placed.info.key] = placed.node

    def _unplace(self, key: str, placed: _Placed) -> None:
        del self._pods[key]
        self._anti_affinity.pop(key, None)
        info = self._nodes.get(placed.node)
        if info is not None:
            info.remove_pod(key)
            if info.empty:
                del self._nodes[placed.node]
