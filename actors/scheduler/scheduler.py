"""The scheduler: pending pods in, Bindings out.

How it works
    Three informers (:mod:`actors.controller.informer`) keep Pods, Nodes and Namespaces.
    Their handlers only file things:

    * an unbound pod for this scheduler (``spec.schedulerName`` empty or ours) goes into
      the :class:`~.queue.SchedulingQueue`;
    * a bound pod goes into the :class:`~.cache.SchedulerCache` (confirming an assumption
      when it is one of ours), nodes and namespace labels too;
    * changes that could help waiting pods are handed to the queue as
      :class:`~.events.ClusterEvent` s.

    One loop pops a pod, reads its latest state from the informer (skipping pods that are
    gone, bound, terminating or no longer ours), runs :func:`~.framework.schedule_pod` over
    the cache and then:

    * **a node**: assumes the pod there in the cache and binds it *asynchronously*
      (``api.bind`` with the pod's uid), so the loop goes on with the next pod while at
      most ``bind_concurrency`` writes are in flight. On success a ``Scheduled`` Event
      (``Successfully assigned ns/pod to node``); on failure the assumption is forgotten
      and the pod retried after its backoff -- from the informer's fresh state, so a pod
      that turned out bound or deleted (``Conflict``, ``NotFound``) is simply dropped;
    * **no node**: the pod waits in the queue's unschedulable set for an event that could
      help; its ``PodScheduled`` condition becomes ``False``/``Unschedulable`` with
      Kubernetes' message, and a ``FailedScheduling`` Warning Event says the same.

Guarantees
    * A decision and its assumption happen without a checkpoint in between, so the next
      decision always sees the previous one: a burst never over-commits a node.
    * Nothing busy-loops: an unschedulable pod is retried on a relevant event, after its
      backoff, or after ``max_unschedulable`` seconds.
    * Writes never block decisions beyond ``bind_concurrency`` in flight; Events never
      block at all (:class:`~actors.controller.EventRecorder`).

:func:`run_scheduler` adds leader election: the whole scheduler -- informers, cache and
queue, built afresh -- runs only while this process holds the Lease
``kube-system/raftsman-scheduler``, and is cancelled when it stops leading.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from actors.client import ApiClient, ApiError, Conflict, NotFound
from actors.controller import NORMAL, WARNING, EventRecorder, Handlers, Informer, object_key
from actors.controller.leaderelection import LeaderElectionConfig, run_leader_elected

from . import events
from .cache import DEFAULT_ASSUMED_TTL, TERMINAL_PHASES, SchedulerCache
from .framework import FilterPlugin, ScorePlugin, schedule_pod
from .metrics import SchedulerMetrics
from .plugins import DEFAULT_FILTERS, DEFAULT_SCORES
from .podinfo import PodInfo
from .queue import (
    DEFAULT_INITIAL_BACKOFF,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_UNSCHEDULABLE,
    QueuedPod,
    SchedulingQueue,
)

__all__ = [
    "DEFAULT_SCHEDULER_NAME",
    "LEASE_NAME",
    "Scheduler",
    "SchedulerConfig",
    "run_scheduler",
]

logger = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
LEASE_NAME = "raftsman-scheduler"
CLEANUP_PERIOD = 1.0
"""How often expired assumptions are looked for (Kubernetes: every second)."""

Write = Callable[[], Awaitable[None]]
"""A write a decision asks for (the bind, or the unschedulable status), run off the loop."""

INVALID_POD = "PodSpec"
"""Rejection marker for a pod whose own spec cannot be read: no cluster event helps,
only a change to the pod (or the periodic flush)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SchedulerConfig:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    """Pods whose ``spec.schedulerName`` is this (or empty, for the default) are ours."""
    bind_concurrency: int = 32
    """Writes (binds, status updates) in flight at most."""
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    max_unschedulable: float = DEFAULT_MAX_UNSCHEDULABLE
    assumed_ttl: float = DEFAULT_ASSUMED_TTL
    seed: int | None = None
    """Seed for breaking ties between equally good nodes (None: random)."""

    def __post_init__(self) -> None:
        if not self.scheduler_name:
            raise ValueError("scheduler_name must not be empty")
        for name in ("initial_backoff", "max_backoff", "max_unschedulable", "assumed_ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, not {value!r}")
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"max_backoff ({self.max_backoff!r}) must be at least "
                f"initial_backoff ({self.initial_backoff!r})"
            )
        if not isinstance(self.bind_concurrency, int) or self.bind_concurrency < 1:
            raise ValueError(
                f"bind_concurrency must be a positive integer, not {self.bind_concurrency!r}"
            )


def _created(pod: Any) -> float:
    ts = pod.metadata.creation_timestamp
    return float(ts.seconds + ts.nanos / 1e9)


def _priority(pod: Any) -> int:
    return int(pod.spec.priority) if pod.spec.HasField("priority") else 0


def _key(pod: Any) -> str:
    return object_key(pod)


class Scheduler:
    """One scheduler instance: informers, cache, queue and the loop (module doc)."""

    def __init__(
        self,
        api: ApiClient,
        *,
        config: SchedulerConfig | None = None,
        filters: Sequence[FilterPlugin] = DEFAULT_FILTERS,
        scores: Sequence[ScorePlugin] = DEFAULT_SCORES,
    ) -> None:
        self.api = api
        self.config = config = config or SchedulerConfig()
        self.filters = tuple(filters)
        self.scores = tuple(scores)
        self.cache = SchedulerCache(assumed_ttl=config.assumed_ttl)
        self.queue = SchedulingQueue(
            initial_backoff=config.initial_backoff,
            max_backoff=config.max_backoff,
            max_unschedulable=config.max_unschedulable,
        )
        self.metrics = SchedulerMetrics()
        self.recorder = EventRecorder(api, config.scheduler_name, buffer=10_000)
        self._rng = random.Random(config.seed)
        self.pods = Informer(api, "pods")
        self.nodes = Informer(api, "nodes")
        self.namespaces = Informer(api, "namespaces")
        self.pods.add_handler(Handlers(self._pod_added, self._pod_updated, self._pod_deleted))
        self.nodes.add_handler(Handlers(self._node_added, self._node_updated, self._node_deleted))
        self.namespaces.add_handler(
            Handlers(self._namespace_added, self._namespace_updated, self._namespace_deleted)
        )
        self._writes = trio.Semaphore(config.bind_concurrency)

    def __repr__(self) -> str:
        return f"<Scheduler {self.config.scheduler_name}>"

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sync the informers, then schedule until cancelled; ``started`` once synced."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.recorder.run)
            async with trio.open_nursery() as starting:
                for informer in (self.namespaces, self.nodes, self.pods):
                    starting.start_soon(nursery.start, informer.run)
            nursery.start_soon(self._cleanup_forever)
            logger.info(
                "caches synced: %d node(s), %d placed pod(s), %d pending",
                len(self.cache.nodes),
                len(self.cache),
                len(self.queue),
            )
            task_status.started()
            await self._schedule_forever(nursery)

    async def _schedule_forever(self, nursery: trio.Nursery) -> None:
        while True:
            await self._writes.acquire()
            try:
                queued = await self.queue.pop()
            except BaseException:
                self._writes.release()
                raise
            try:
                write = self.schedule_one(queued)
            except Exception:
                # A bug met by one pod must not stop scheduling for all the others.
                logger.exception("scheduling %s failed; retrying after backoff", queued.key)
                self.metrics.attempts["error"] += 1
                self.cache.forget(queued.key)
                if queued.key not in self.queue:
                    self.queue.requeue_backoff(queued)
                write = None
            if write is None:
                self._writes.release()
            else:
                nursery.start_soon(self._write_then_release, write)

    async def _write_then_release(self, write: Write) -> None:
        try:
            await write()
        finally:
            self._writes.release()

    async def _cleanup_forever(self) -> None:
        while True:
            await trio.sleep(CLEANUP_PERIOD)
            if self.cache.cleanup_expired(now=trio.current_time()):
                self.queue.move(events.ASSIGNED_POD_DELETE)

    # ------------------------------------------------------------------ one attempt

    def schedule_one(self, queued: QueuedPod) -> Write | None:
        """Decide for one popped pod (synchronously) and return the write to make, if any
        (an async callable: the bind, or the unschedulable status update)."""
        pod = self.pods.cache.get(queued.key)
        if (
            pod is None
            or pod.spec.node_name
            or pod.metadata.HasField("deletion_timestamp")
            or not self._responsible(pod)
            or self.cache.node_of(queued.key) is not None
        ):
            return None
        try:
            info = PodInfo.of(pod)
        except ValueError as exc:
            self.metrics.attempts["error"] += 1
            self.queue.requeue_unschedulable(queued, frozenset((INVALID_POD,)))
            return self._unschedulable(pod, f"invalid pod: {exc}")
        started = time.perf_counter()
        decision = schedule_pod(
            info, self.cache, filters=self.filters, scores=self.scores, rng=self._rng
        )
        self.metrics.scheduling_algorithm_duration.observe(time.perf_counter() - started)
        if decision.node is None:
            self.metrics.attempts["unschedulable"] += 1
            self.queue.requeue_unschedulable(queued, decision.rejected_by)
            logger.debug("pod %s is unschedulable: %s", queued.key, decision.message)
            return self._unschedulable(pod, decision.message)
        self.cache.assume(info, decision.node)
        node = decision.node
        return lambda: self._bind(queued, pod, node)

    async def _bind(self, queued: QueuedPod, pod: Any, node: str) -> None:
        key = queued.key
        namespace, name = pod.metadata.namespace, pod.metadata.name
        started = trio.current_time()
        try:
            await self.api.bind(name, node, namespace=namespace, uid=pod.metadata.uid)
        except ApiError as exc:
            self.cache.forget(key)
            self.metrics.attempts["error"] += 1
            self.metrics.bind_failures[type(exc).__name__] += 1
            current = self.pods.cache.get(key)
            if isinstance(exc, Conflict | NotFound) and (current is None or current.spec.node_name):
                logger.info("bind of %s to %s: %s; the pod is bound or gone", key, node, exc)
                return
            logger.warning("bind of %s to %s failed: %s; retrying after backoff", key, node, exc)
            if current is not None and key not in self.queue:
                self.queue.requeue_backoff(queued)
            return
        now = trio.current_time()
        self.cache.finish_binding(key, now=now)
        self.metrics.attempts["scheduled"] += 1
        self.metrics.binding_duration.observe(now - started)
        self.metrics.pod_scheduling_duration.observe(now - queued.queued_at)
        self.recorder.event(
            pod, NORMAL, "Scheduled", f"Successfully assigned {namespace}/{name} to {node}"
        )

    def _unschedulable(self, pod: Any, message: str) -> Write | None:
        self.recorder.event(pod, WARNING, "FailedScheduling", message)
        for condition in pod.status.conditions:
            if condition.type == "PodScheduled":
                if (
                    condition.status == "False"
                    and condition.reason == "Unschedulable"
                    and condition.message == message
                ):
                    return None
                break
        return lambda: self._write_unschedulable(pod, message)

    async def _write_unschedulable(self, pod: Any, message: str) -> None:
        updated = type(pod)()
        updated.CopyFrom(pod)
        conditions = updated.status.conditions
        condition = next((c for c in conditions if c.type == "PodScheduled"), None)
        if condition is None:
            condition = conditions.add(type="PodScheduled")
        if condition.status != "False" or not condition.HasField("last_transition_time"):
            condition.last_transition_time.GetCurrentTime()
        condition.status = "False"
        condition.reason = "Unschedulable"
        condition.message = message
        condition.ClearField("last_probe_time")
        try:
            await self.api.update_status(updated)
        except (Conflict, NotFound) as exc:
            logger.debug("status of %s not updated: %s", _key(pod), exc)
        except ApiError as exc:
            logger.info("could not update the status of %s: %s", _key(pod), exc)

    def _responsible(self, pod: Any) -> bool:
        name = pod.spec.scheduler_name
        if name:
            return bool(name == self.config.scheduler_name)
        return self.config.scheduler_name == DEFAULT_SCHEDULER_NAME

    # ------------------------------------------------------------------ pod events

    def _pending(self, pod: Any) -> bool:
        return self._responsible(pod) and pod.status.phase not in TERMINAL_PHASES

    def _pod_added(self, pod: Any) -> None:
        if pod.spec.node_name:
            self.cache.add_pod(pod)
            self.queue.move(
                events.ASSIGNED_POD_ADD
                if pod.status.phase not in TERMINAL_PHASES
                else events.ASSIGNED_POD_DELETE
            )
        elif self._pending(pod):
            self.queue.add(_key(pod), priority=_priority(pod), created=_created(pod))

    def _pod_updated(self, old: Any, new: Any) -> None:
        key = _key(new)
        if new.spec.node_name:
            if not old.spec.node_name:
                self.queue.delete(key)
                self.cache.add_pod(new)
                self.queue.move(events.ASSIGNED_POD_ADD)
                return
            self.cache.update_pod(new)
            was_done = old.status.phase in TERMINAL_PHASES
            if new.status.phase in TERMINAL_PHASES and not was_done:
                self.queue.move(events.ASSIGNED_POD_DELETE)
            elif dict(old.metadata.labels) != dict(new.metadata.labels):
                self.queue.move(events.ASSIGNED_POD_LABEL_CHANGE)
            return
        if not self._pending(new):
            self.queue.delete(key)
            return
        if self.cache.is_assumed(key):
            return  # being bound; the outcome decides
        changed = old.spec != new.spec or dict(old.metadata.labels) != dict(new.metadata.labels)
        self.queue.update(key, priority=_priority(new), created=_created(new), changed=changed)

    def _pod_deleted(self, pod: Any) -> None:
        key = _key(pod)
        self.queue.delete(key)
        if self.cache.node_of(key) is not None:
            self.cache.remove_pod(key)
            self.queue.move(events.ASSIGNED_POD_DELETE)

    # ------------------------------------------------------------------ node events

    def _node_added(self, node: Any) -> None:
        self.cache.add_node(node)
        self.queue.move(events.NODE_ADD)

    def _node_updated(self, old: Any, new: Any) -> None:
        self.cache.update_node(new)
        for event in events.node_events(old, new):
            self.queue.move(event)

    def _node_deleted(self, node: Any) -> None:
        self.cache.remove_node(node.metadata.name)

    # ------------------------------------------------------------------ namespace events

    def _namespace_added(self, namespace: Any) -> None:
        self.cache.set_namespace(namespace.metadata.name, namespace.metadata.labels)

    def _namespace_updated(self, old: Any, new: Any) -> None:
        self.cache.set_namespace(new.metadata.name, new.metadata.labels)
        if dict(old.metadata.labels) != dict(new.metadata.labels):
            self.queue.move(events.NAMESPACE_LABEL_CHANGE)

    def _namespace_deleted(self, namespace: Any) -> None:
        self.cache.remove_namespace(namespace.metadata.name)


async def run_scheduler(
    api: ApiClient,
    *,
    config: SchedulerConfig | None = None,
    election: LeaderElectionConfig | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a :class:`Scheduler` until cancelled; with ``election``, only while leading.

    Each term of leadership builds a fresh scheduler (informers list again), so nothing
    assumed under an earlier term survives into the next. ``started`` once the scheduler
    runs (without election) or after the first attempt to acquire the Lease (with it).
    """
    if election is None:
        await Scheduler(api, config=config).run(task_status=task_status)
        return

    async def leading() -> None:
        logger.info("leading as %s: starting the scheduler", election.identity)
        await Scheduler(api, config=config).run()

    async with trio.open_nursery() as nursery:
        await nursery.start(run_leader_elected, api, election, leading)
        task_status.started()
