"""The node lifecycle loop: node health passes, eviction taints, taint-based eviction.

Three kinds of keys share one work queue:

``monitor`` -- one pass over every node (Kubernetes' ``monitorNodeHealth``), every
``node_monitor_period`` seconds and whenever a node's conditions, taints, labels or
schedulability change. For each node it

1. judges health (:class:`~.health.HealthTracker`): no lease renewal and no new Ready
   heartbeat observed for the grace period -> Ready (and the pressure conditions) become
   ``Unknown``, reason ``NodeStatusUnknown``, "Kubelet stopped posting node status.";
2. mirrors conditions into NoSchedule taints (:func:`~.taints.condition_taints`);
3. for a node not Ready, swaps a wrong eviction taint at once (``not-ready`` <->
   ``unreachable``) or queues the node for one; for a Ready node, removes it;
4. on a node's transition out of Ready, records ``NodeNotReady`` and marks its pods not
   Ready (so Endpoints drop them at once, before any eviction);

then recomputes zone states (:class:`~.disruption.Disruption`): entering full
disruption removes every eviction taint, leaving it restarts every grace period. Last,
queued nodes get their NoExecute taint as each zone's token bucket allows; a pass waits
at most until the next token.

``pod:<namespace>/<name>`` -- taint-based eviction (Kubernetes' taint manager) of one
pod: enqueued when the pod appears on a node with NoExecute taints or when its node's
NoExecute taints change; deletes the pod (event ``TaintManagerEviction``) at once when a
taint is not tolerated, or looks again when the shortest ``tolerationSeconds`` since the
taint's ``timeAdded`` runs out.

``notready:<node>`` -- sets Ready=False on the node's pods that still say True.

State kept in memory (probe times, last Ready status per node, zone queues) is rebuilt
from the caches after a restart or a leader change; a new leader gives every node a full
grace period first, as Kubernetes does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import trio

from actors.client import ApiError, Conflict, NotFound
from actors.controller import NORMAL, WARNING, Controller, Handlers, Informer, TransientError
from actors.controllers.context import ControllerContext

from .disruption import EXCLUDE_LABEL, REGION_LABEL, ZONE_LABEL, Disruption, zone_of
from .health import HealthTracker, ready_condition
from .taints import (
    NO_EXECUTE,
    NOT_READY,
    UNREACHABLE,
    condition_taints,
    eviction_delay,
    is_managed_no_schedule,
    no_execute_taint,
)

__all__ = ["LEASE_NAMESPACE", "MONITOR", "NodeLifecycleController"]

logger = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
MONITOR = "monitor"
POD_PREFIX = "pod:"
NOT_READY_PREFIX = "notready:"
NODE_INDEX = "nodeName"
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
WRITE_ATTEMPTS = 5
_EVICTION_KEYS = (NOT_READY, UNREACHABLE)
_MISSING = "<missing>"

TaintEdit = Callable[[Any], list[Any] | None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _pod_node(pod: Any) -> list[str]:
    return [pod.spec.node_name] if pod.spec.node_name else []


def _copy(obj: Any) -> Any:
    out = type(obj)()
    out.CopyFrom(obj)
    return out


def _is_eviction_taint(taint: Any) -> bool:
    return bool(taint.effect == NO_EXECUTE and taint.key in _EVICTION_KEYS)


def _no_execute(node: Any) -> tuple[tuple[str, str, bytes], ...]:
    return tuple(
        (t.key, t.value, t.time_added.SerializeToString(deterministic=True))
        for t in node.spec.taints
        if t.effect == NO_EXECUTE
    )


def _shape(node: Any) -> tuple[Any, ...]:
    """What of a node a monitor pass reacts to (not heartbeats)."""
    labels = node.metadata.labels
    return (
        tuple((c.type, c.status) for c in node.status.conditions),
        tuple((t.key, t.value, t.effect) for t in node.spec.taints),
        node.spec.unschedulable,
        labels.get(REGION_LABEL),
        labels.get(ZONE_LABEL),
        EXCLUDE_LABEL in labels,
    )


def _same_taint(a: Any, b: Any) -> bool:
    return bool(a.key == b.key and a.effect == b.effect)


def _condition_edit(node: Any) -> list[Any] | None:
    want = condition_taints(node)
    keep = [
        t
        for t in node.spec.taints
        if not is_managed_no_schedule(t) or any(_same_taint(t, w) for w in want)
    ]
    missing = [w for w in want if not any(_same_taint(t, w) for t in keep)]
    if not missing and len(keep) == len(node.spec.taints):
        return None
    return keep + missing


def _eviction_edit(want: str | None, at: datetime) -> TaintEdit:
    """An edit leaving exactly the eviction taint ``want`` (None: no eviction taint)."""

    def edit(node: Any) -> list[Any] | None:
        current = [t for t in node.spec.taints if _is_eviction_taint(t)]
        if want is None and not current:
            return None
        if want is not None and [t.key for t in current] == [want]:
            return None
        keep = [t for t in node.spec.taints if not _is_eviction_taint(t)]
        if want is not None:
            keep.append(next((t for t in current if t.key == want), no_execute_taint(want, at)))
        return keep

    return edit


def _wanted_eviction_taint(status: str | None) -> str | None:
    return {"False": NOT_READY, "Unknown": UNREACHABLE}.get(status or "")


class NodeLifecycleController(Controller):
    """The ``nodelifecycle`` loop (see the module doc).

    ``clock`` (monotonic seconds, trio's by default) times grace periods and token
    buckets; ``wall`` (UTC) stamps conditions and taints and reads ``timeAdded``.
    """

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Callable[[], float] = trio.current_time,
        wall: Callable[[], datetime] = _utcnow,
    ) -> None:
        options = ctx.options
        self.api = ctx.api
        self.events = ctx.recorder
        self.options = options
        self.clock = clock
        self.wall = wall
        self.nodes: Informer = ctx.informers.informer("Node")
        self.leases: Informer = ctx.informers.informer("Lease", namespace=LEASE_NAMESPACE)
        self.pods: Informer = ctx.informers.informer("Pod")
        try:
            self.pods.add_indexer(NODE_INDEX, _pod_node)
        except ValueError:
            pass  # the shared pod informer has it already
        self.health = HealthTracker(
            grace=options.node_monitor_grace_period,
            startup_grace=options.node_startup_grace_period,
        )
        self.disruption = Disruption(
            eviction_rate=options.node_eviction_rate,
            secondary_rate=options.secondary_node_eviction_rate,
            unhealthy_threshold=options.unhealthy_zone_threshold,
            large_cluster_threshold=options.large_cluster_size_threshold,
        )
        self.ready: dict[str, str | None] = {}
        """The Ready status each node had at the last pass (None: no condition)."""
        self._first_seen: dict[tuple[str, str, str], datetime] = {}
        super().__init__("nodelifecycle", self.reconcile_key, workers=options.workers)
        self.depends_on([self.nodes, self.leases, self.pods])
        self.nodes.add_handler(
            Handlers(
                on_add=self._node_added,
                on_update=self._node_updated,
                on_delete=lambda _node: self.enqueue(MONITOR),
            )
        )
        self.leases.add_handler(
            Handlers(
                on_add=lambda lease: self.health.observe_lease(lease, self.clock()),
                on_update=lambda _old, lease: self.health.observe_lease(lease, self.clock()),
            )
        )
        self.pods.add_handler(
            Handlers(on_add=self._pod_seen, on_update=lambda _old, pod: self._pod_seen(pod))
        )

    # ------------------------------------------------------------------ handlers

    def _node_added(self, node: Any) -> None:
        self.health.observe_node(node, self.clock())
        self.enqueue(MONITOR)
        if _no_execute(node):
            self._enqueue_pods_on(node.metadata.name)

    def _node_updated(self, old: Any, new: Any) -> None:
        self.health.observe_node(new, self.clock())
        if _shape(old) != _shape(new):
            self.enqueue(MONITOR)
        if _no_execute(old) != _no_execute(new):
            self._enqueue_pods_on(new.metadata.name)

    def _enqueue_pods_on(self, node_name: str) -> None:
        for pod in self.pods.cache.by_index(NODE_INDEX, node_name):
            self.enqueue(POD_PREFIX + f"{pod.metadata.namespace}/{pod.metadata.name}")

    def _pod_seen(self, pod: Any) -> None:
        if not pod.spec.node_name or pod.metadata.HasField("deletion_timestamp"):
            return
        node = self.nodes.cache.get(pod.spec.node_name)
        if node is not None and _no_execute(node):
            self.enqueue(POD_PREFIX + f"{pod.metadata.namespace}/{pod.metadata.name}")

    # ------------------------------------------------------------------ dispatch

    async def reconcile_key(self, key: str) -> float | None:
        if key == MONITOR:
            return await self.monitor()
        if key.startswith(POD_PREFIX):
            return await self.evict_if_due(key.removeprefix(POD_PREFIX))
        if key.startswith(NOT_READY_PREFIX):
            await self.mark_pods_not_ready(key.removeprefix(NOT_READY_PREFIX))
        return None

    # ------------------------------------------------------------------ monitor pass

    async def monitor(self) -> float:
        """One pass over every node; seconds until the next one."""
        now, wall = self.clock(), self.wall()
        zones: dict[str, list[str | None]] = {}
        names = set()
        for cached in self.nodes.cache.list():
            name = cached.metadata.name
            names.add(name)
            try:
                node = await self._monitor_node(cached, now, wall)
            except (ApiError, TransientError) as exc:
                logger.warning("nodelifecycle: node %s: %s", name, exc)
                node = cached
            if node is None:
                continue
            if EXCLUDE_LABEL not in node.metadata.labels:
                zones.setdefault(zone_of(node.metadata.labels), []).append(self.ready.get(name))
        for gone in set(self.health.names()) - names:
            self.health.forget(gone)
            self.disruption.unmark(gone)
            self.ready.pop(gone, None)
        change = self.disruption.update(zones, now)
        if change.entered_full:
            logger.warning(
                "nodelifecycle: no node is Ready; entering full disruption: evictions stop"
            )
            for node in self.nodes.cache.list():
                await self._try_taints(node, _eviction_edit(None, wall))
        if change.exited_full:
            logger.warning("nodelifecycle: some node is Ready again; leaving full disruption")
            self.health.reset_all(now)
        wait = await self._taint_pass(now, wall)
        return min(self.options.node_monitor_period, max(wait, 0.01))

    async def _monitor_node(self, node: Any, now: float, wall: datetime) -> Any | None:
        name = node.metadata.name
        lease = self.leases.cache.get_by_name(LEASE_NAMESPACE, name)
        verdict = self.health.check(node, lease, now)
        ready = ready_condition(node)
        if verdict.stale and (ready is None or ready.status != "Unknown"):
            node = await self._mark_unknown(node, now, wall)
            if node is None:
                return None
            ready = ready_condition(node)
        status = ready.status if ready is not None else None
        self._observe(node, status)
        node = await self._update_taints(node, _condition_edit)
        if node is None or status is None:
            return node
        want = _wanted_eviction_taint(status)
        if want is None:
            self.disruption.unmark(name)
            return await self._update_taints(node, _eviction_edit(None, wall))
        present = [t.key for t in node.spec.taints if _is_eviction_taint(t)]
        if present and want not in present:
            # Not Ready <-> unreachable: swap at once, the node was already chosen.
            return await self._update_taints(node, _eviction_edit(want, wall))
        if want not in present:
            self.disruption.mark(name, zone_of(node.metadata.labels), now)
        return node

    def _observe(self, node: Any, status: str | None) -> None:
        name = node.metadata.name
        previous = self.ready.get(name, _MISSING)
        self.ready[name] = status
        if previous == "True" and status != "True":
            self.events.event(
                node, NORMAL, "NodeNotReady", f"Node {name} status is now: NodeNotReady"
            )
        elif previous not in (_MISSING, "True") and status == "True":
            self.events.event(node, NORMAL, "NodeReady", f"Node {name} status is now: NodeReady")
        if status is not None and status != "True" and previous in (_MISSING, "True"):
            self.enqueue(NOT_READY_PREFIX + name)

    async def _mark_unknown(self, node: Any, now: float, wall: datetime) -> Any | None:
        """Ready (and pressure conditions) -> Unknown; re-judged on a fresh read if the
        write conflicts (the agent may just have posted)."""
        current = node
        for _ in range(WRITE_ATTEMPTS):
            updated = _copy(current)
            has_ready = False
            for condition in updated.status.conditions:
                if condition.type not in UNKNOWN_CONDITIONS:
                    continue
                has_ready = has_ready or condition.type == "Ready"
                if condition.status != "Unknown":
                    condition.status = "Unknown"
                    condition.reason = "NodeStatusUnknown"
                    condition.message = "Kubelet stopped posting node status."
                    condition.last_transition_time.FromDatetime(wall)
            if not has_ready:
                added = updated.status.conditions.add(
                    type="Ready",
                    status="Unknown",
                    reason="NodeStatusNeverUpdated",
                    message="Kubelet never posted node status.",
                )
                added.last_heartbeat_time.CopyFrom(current.metadata.creation_timestamp)
                added.last_transition_time.FromDatetime(wall)
            try:
                written = await self.api.update_status(updated)
                logger.info("nodelifecycle: node %s stopped posting status", node.metadata.name)
                return written
            except NotFound:
                return None
            except Conflict:
                current = await self._live(node.metadata.name)
                if current is None:
                    return None
                lease = self.leases.cache.get_by_name(LEASE_NAMESPACE, node.metadata.name)
                ready = ready_condition(current)
                if not self.health.check(current, lease, now).stale or (
                    ready is not None and ready.status == "Unknown"
                ):
                    return current
        raise TransientError(f"node {node.metadata.name} kept changing")

    async def _live(self, name: str) -> Any | None:
        try:
            return await self.api.get("Node", name)
        except NotFound:
            return None

    async def _update_taints(self, node: Any, edit: TaintEdit) -> Any | None:
        """Apply ``edit`` to the node's taints (re-read and re-applied on conflict); the
        node as written, as it was when nothing changed, or None when it is gone."""
        current = node
        for _ in range(WRITE_ATTEMPTS):
            taints = edit(current)
            if taints is None:
                return current
            updated = _copy(current)
            del updated.spec.taints[:]
            updated.spec.taints.extend(taints)
            try:
                return await self.api.update(updated)
            except NotFound:
                return None
            except Conflict:
                current = await self._live(node.metadata.name)
                if current is None:
                    return None
        raise TransientError(f"node {node.metadata.name} kept changing")

    async def _try_taints(self, node: Any, edit: TaintEdit) -> None:
        try:
            await self._update_taints(node, edit)
        except (ApiError, TransientError) as exc:
            logger.warning(
                "nodelifecycle: node %s: taints not updated: %s", node.metadata.name, exc
            )

    def _needs_eviction_taint(self, name: str) -> bool:
        node = self.nodes.cache.get(name)
        want = _wanted_eviction_taint(self.ready.get(name))
        if node is None or want is None:
            return False
        return not any(_is_eviction_taint(t) and t.key == want for t in node.spec.taints)

    async def _taint_pass(self, now: float, wall: datetime) -> float:
        """Taint queued nodes as the buckets allow; seconds until the next token."""
        wait = math.inf
        for queue in list(self.disruption.queues.values()):
            for name in queue.take(now, self._needs_eviction_taint):
                node = self.nodes.cache.get(name)
                want = _wanted_eviction_taint(self.ready.get(name))
                if node is None or want is None:
                    continue
                logger.info("nodelifecycle: tainting node %s with %s:NoExecute", name, want)
                await self._try_taints(node, _eviction_edit(want, wall))
            next_token = queue.wait(now)
            if next_token is not None:
                wait = min(wait, next_token)
        return wait

    # ------------------------------------------------------------------ pods

    def _added(self, node: Any) -> Callable[[Any], datetime]:
        def added(taint: Any) -> datetime:
            if taint.HasField("time_added"):
                stamp: datetime = taint.time_added.ToDatetime(tzinfo=UTC)
                return stamp
            key = (node.metadata.name, taint.key, taint.value)
            return self._first_seen.setdefault(key, self.wall())

        return added

    async def evict_if_due(self, pod_key: str) -> float | None:
        """Delete the pod if its node's NoExecute taints say so; else when to look again."""
        pod = self.pods.cache.get(pod_key)
        if pod is None or pod.metadata.HasField("deletion_timestamp") or not pod.spec.node_name:
            return None
        node = self.nodes.cache.get(pod.spec.node_name)
        if node is None:
            return None
        taints = [t for t in node.spec.taints if t.effect == NO_EXECUTE]
        if not taints:
            return None
        delay = eviction_delay(
            pod.spec.tolerations, taints, now=self.wall(), added=self._added(node)
        )
        if delay is None:
            return None
        if delay > 0:
            return delay
        try:
            await self.api.delete(
                "Pod", pod.metadata.name, namespace=pod.metadata.namespace, uid=pod.metadata.uid
            )
        except (NotFound, Conflict):
            return None
        logger.info("nodelifecycle: evicted pod %s from node %s", pod_key, node.metadata.name)
        self.events.event(
            pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {pod_key}"
        )
        return None

    async def mark_pods_not_ready(self, node_name: str) -> None:
        status = self.ready.get(node_name)
        if status is None or status == "True":
            return
        failed = 0
        for pod in self.pods.cache.by_index(NODE_INDEX, node_name):
            ready = next((c for c in pod.status.conditions if c.type == "Ready"), None)
            if ready is None or ready.status != "True":
                continue
            updated = _copy(pod)
            for condition in updated.status.conditions:
                if condition.type == "Ready":
                    condition.status = "False"
                    condition.last_transition_time.FromDatetime(self.wall())
            try:
                await self.api.update_status(updated)
            except NotFound:
                continue
            except ApiError:
                failed += 1
                continue
            self.events.event(pod, WARNING, "NodeNotReady", "Node is not ready")
        if failed:
            raise TransientError(f"{failed} pod(s) on node {node_name} not marked not ready")
