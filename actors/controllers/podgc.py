"""Pod garbage collection: pods no node agent will ever clean up.

A bound pod is removed from the store by its node agent: on deletion the API server only
marks it (``deletionTimestamp``, grace period) and the agent, once the containers have
stopped, deletes it with grace 0. Some pods have no agent left to do that; this loop, as
Kubernetes' pod GC controller, force-deletes them (grace 0, uid precondition):

Orphaned pods
    bound to a node that does not exist. The node must stay missing from the cache for
    ``orphaned_pod_quarantine`` seconds (a node agent re-registering its node is not a
    lost node) and then be confirmed missing by a live GET, since the cache may lag.

Terminating pods on unreachable nodes
    being deleted, on a node whose Ready condition is Unknown or that carries the
    ``node.kubernetes.io/unreachable`` taint, once their grace period has run out (the
    ``deletionTimestamp``). Without this a ReplicaSet or StatefulSet replacement would
    wait forever for a pod whose node is gone. A node that answers -- even Ready=False --
    keeps its pods: its agent is alive and finishes them.

Terminated pods beyond ``terminated_pod_gc_threshold``
    Succeeded and Failed pods pile up (Jobs leave them); above the threshold the oldest go,
    evicted pods first, as Kubernetes orders them. A threshold <= 0 turns this off.

Keys: ``pod:<namespace>/<name>`` for the first two (enqueued when a pod's node is missing
or a bound pod is being deleted, when a node is deleted, when a node turns unreachable),
and ``terminated`` for the threshold pass (enqueued when a pod ends).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import trio

from actors.client import ApiError, Conflict, NotFound
from actors.controller import Controller, Handlers, Informer, TransientError
from actors.controllers.context import ControllerContext

__all__ = [
    "PodGCController",
    "TERMINATED",
    "gc_order",
    "is_terminated",
    "new_controller",
    "node_unreachable",
]

logger = logging.getLogger(__name__)

TERMINATED = "terminated"
POD_PREFIX = "pod:"
NODE_INDEX = "nodeName"
TERMINATED_INDEX = "podgc/terminated"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_terminated(pod: Any) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def node_unreachable(node: Any) -> bool:
    """The node's agent cannot be heard: Ready Unknown, or the unreachable taint."""
    if any(t.key == UNREACHABLE_TAINT for t in node.spec.taints):
        return True
    return any(c.type == "Ready" and c.status == "Unknown" for c in node.status.conditions)


def gc_order(pods: list[Any]) -> list[Any]:
    """Terminated pods in the order they are collected: evicted first, then oldest."""

    def key(pod: Any) -> tuple[bool, int, int, str, str]:
        stamp = pod.metadata.creation_timestamp
        return (
            pod.status.reason != "Evicted",
            stamp.seconds,
            stamp.nanos,
            pod.metadata.namespace,
            pod.metadata.name,
        )

    return sorted(pods, key=key)


def _pod_node(pod: Any) -> list[str]:
    return [pod.spec.node_name] if pod.spec.node_name else []


def _terminated(pod: Any) -> list[str]:
    return ["true"] if is_terminated(pod) else []


def _add_index(informer: Informer, name: str, func: Callable[[Any], list[str]]) -> None:
    try:
        informer.add_indexer(name, func)
    except ValueError:
        pass  # the shared pod informer has it already


def _pod_key(pod: Any) -> str:
    return POD_PREFIX + f"{pod.metadata.namespace}/{pod.metadata.name}"


class PodGCController(Controller):
    """The ``podgc`` loop (see the module doc); ``clock`` is monotonic, ``wall`` UTC."""

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Callable[[], float] = trio.current_time,
        wall: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.api = ctx.api
        self.options = ctx.options
        self.clock = clock
        self.wall = wall
        self.pods: Informer = ctx.informers.informer("Pod")
        self.nodes: Informer = ctx.informers.informer("Node")
        _add_index(self.pods, NODE_INDEX, _pod_node)
        _add_index(self.pods, TERMINATED_INDEX, _terminated)
        self._missing_since: dict[str, float] = {}
        """Node name -> when its pods were first found without it (the quarantine)."""
        super().__init__("podgc", self.reconcile_key, workers=ctx.options.workers)
        self.depends_on([self.pods, self.nodes])
        self.pods.add_handler(
            Handlers(on_add=self._pod_seen, on_update=lambda _old, pod: self._pod_seen(pod))
        )
        self.nodes.add_handler(
            Handlers(
                on_add=self._node_added,
                on_update=self._node_updated,
                on_delete=lambda node: self._enqueue_pods_on(node.metadata.name),
            )
        )

    # ------------------------------------------------------------------ handlers

    def _pod_seen(self, pod: Any) -> None:
        if is_terminated(pod):
            self.enqueue(TERMINATED)
        node_name = pod.spec.node_name
        if not node_name:
            return
        if pod.metadata.HasField("deletion_timestamp") or self.nodes.cache.get(node_name) is None:
            self.enqueue(_pod_key(pod))

    def _node_added(self, node: Any) -> None:
        self._missing_since.pop(node.metadata.name, None)

    def _node_updated(self, old: Any, new: Any) -> None:
        if node_unreachable(new) and not node_unreachable(old):
            for pod in self.pods.cache.by_index(NODE_INDEX, new.metadata.name):
                if pod.metadata.HasField("deletion_timestamp"):
                    self.enqueue(_pod_key(pod))

    def _enqueue_pods_on(self, node_name: str) -> None:
        for pod in self.pods.cache.by_index(NODE_INDEX, node_name):
            self.enqueue(_pod_key(pod))

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> float | None:
        if key == TERMINATED:
            await self.collect_terminated()
            return None
        return await self.collect_pod(key.removeprefix(POD_PREFIX))

    async def collect_pod(self, pod_key: str) -> float | None:
        pod = self.pods.cache.get(pod_key)
        if pod is None or not pod.spec.node_name:
            return None
        node_name = pod.spec.node_name
        node = self.nodes.cache.get(node_name)
        if node is None:
            now = self.clock()
            since = self._missing_since.setdefault(node_name, now)
            left = since + self.options.orphaned_pod_quarantine - now
            if left > 0:
                return left
            try:
                await self.api.get("Node", node_name)
                return None  # the cache is behind; the node's add event follows
            except NotFound:
                pass
            except ApiError as exc:
                raise TransientError(f"checking node {node_name}: {exc}") from exc
            await self._force_delete(pod, f"its node {node_name} does not exist")
            return None
        if not pod.metadata.HasField("deletion_timestamp") or not node_unreachable(node):
            return None
        deadline = pod.metadata.deletion_timestamp.ToDatetime(tzinfo=UTC)
        left = (deadline - self.wall()).total_seconds()
        if left > 0:
            return left
        await self._force_delete(pod, f"its grace period ended on unreachable node {node_name}")
        return None

    async def collect_terminated(self) -> None:
        threshold = self.options.terminated_pod_gc_threshold
        if threshold <= 0:
            return
        terminated = self.pods.cache.by_index(TERMINATED_INDEX, "true")
        excess = len(terminated) - threshold
        if excess <= 0:
            return
        for pod in gc_order(terminated)[:excess]:
            await self._force_delete(
                pod, f"{len(terminated)} terminated pods exceed the threshold of {threshold}"
            )

    async def _force_delete(self, pod: Any, why: str) -> None:
        logger.info(
            "podgc: force deleting pod %s/%s: %s", pod.metadata.namespace, pod.metadata.name, why
        )
        try:
            await self.api.delete(
                "Pod",
                pod.metadata.name,
                namespace=pod.metadata.namespace,
                grace_period_seconds=0,
                uid=pod.metadata.uid,
            )
        except (NotFound, Conflict):
            pass
        except ApiError as exc:
            raise TransientError(
                f"deleting pod {pod.metadata.namespace}/{pod.metadata.name}: {exc}"
            ) from exc


def new_controller(ctx: ControllerContext) -> Controller:
    """The pod GC controller on ``ctx``'s shared informers."""
    return PodGCController(ctx)
