"""Ending a pod on this node: grace periods, stopping what runs, and cleaning up.

A pod worker (:mod:`.podworker`) ends its pod's containers in three situations, all in
the same way:

* **Deletion** (``deletionTimestamp`` set). Probes stop; every running container gets
  its preStop hook and SIGTERM, and SIGKILL when the grace period
  (``deletionGracePeriodSeconds``, :func:`deletion_grace`) ends -- app containers first,
  then the sidecars one by one in reverse order with what is left of it; a shorter
  grace arriving meanwhile (or the pod vanishing from the API: force deletion) shortens
  it (:meth:`Stopper.shorten`). Once no container runs, the worker removes the
  containers, releases the IP, deletes the volumes and logs (:func:`clean_up`), and
  deletes the Pod object with grace 0 and a uid precondition
  (:func:`delete_pod_object`), so a new pod of the same name is never touched.
* **A terminal pod** (Succeeded/Failed, from the worker or from the status it finds on
  the API server after a restart) is never started again: what still runs of it is
  stopped (sidecars of a finished pod, everything of an evicted one) within the pod's
  ``terminationGracePeriodSeconds`` (:func:`pod_grace`), then its address is released.
* **Failing a pod** for a reason of the node (eviction): every container stopped
  (preStop, grace of the pod, app containers first and sidecars last) and none
  restarted -- the terminal case above.

:class:`Stopper` holds the one deadline of these stops: every container being stopped
gets SIGKILL at it, however many syncs the stop takes, and it only ever moves earlier.
"""

from __future__ import annotations

import enum
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence

import trio

from actors.client import ApiError, Conflict, NotFound
from node_agent.agent import lifecycle
from node_agent.agent.containers import ContainerRecord
from node_agent.agent.context import PodContext, PodDeleter, PodIPs
from node_agent.network import PodIPError
from node_agent.runtime.base import ContainerId, ContainerRuntime, ContainerRuntimeError
from node_agent.runtime.logs import container_log_dir
from proto.k8s import core_pb2

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "StopOutcome",
    "Stopper",
    "clean_up",
    "delete_pod_object",
    "deletion_grace",
    "pod_grace",
    "release_ip",
    "remove_containers",
]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30
"""Kubernetes' default ``terminationGracePeriodSeconds``."""

ContainerOf = Callable[[str], core_pb2.Container | None]
"""The pod's current spec of a container, by name (None when the spec has none)."""


def pod_grace(pod: core_pb2.Pod) -> float:
    """The pod's ``terminationGracePeriodSeconds`` (default 30, never negative)."""
    spec = pod.spec
    if spec.HasField("termination_grace_period_seconds"):
        return float(max(0, spec.termination_grace_period_seconds))
    return float(DEFAULT_GRACE_SECONDS)


def deletion_grace(pod: core_pb2.Pod) -> float:
    """The grace period of a pod being deleted: ``deletionGracePeriodSeconds``, else the
    pod's own (:func:`pod_grace`)."""
    meta = pod.metadata
    if meta.HasField("deletion_grace_period_seconds"):
        return float(max(0, meta.deletion_grace_period_seconds))
    return pod_grace(pod)


class StopOutcome(enum.Enum):
    STOPPED = "stopped"
    """Nothing of the pod runs any more."""
    CUT_SHORT = "cut short"
    """A shorter deadline arrived: call again at once."""
    STILL_RUNNING = "still running"
    """A container could not be stopped: call again a little later."""


class Stopper:
    """Stops the running containers of one pod by one deadline.

    The first :meth:`stop` sets the deadline (now + grace); later calls keep it, and
    :meth:`shorten` only moves it earlier, interrupting a stop in progress so that it
    starts over with the new one. Used by the pod's worker task only.
    """

    def __init__(self, runtime: ContainerRuntime, *, event: lifecycle.EventFn) -> None:
        self._runtime = runtime
        self._event = event
        self.deadline: float | None = None
        """Trio time of SIGKILL for what is being stopped; None until a stop began."""
        self._scope: trio.CancelScope | None = None

    @property
    def stopping(self) -> bool:
        """Whether a stop began (the pod's containers are never started again)."""
        return self.deadline is not None

    def shorten(self, deadline: float) -> None:
        """Move the deadline to ``deadline`` if a stop began and it is earlier."""
        if self.deadline is not None and deadline < self.deadline:
            self.deadline = deadline
            if self._scope is not None:
                self._scope.cancel()

    async def stop(
        self,
        records: Sequence[ContainerRecord],
        grace: float,
        *,
        container_of: ContainerOf,
        pod_ip: str,
    ) -> StopOutcome:
        """Stop every running container within ``grace`` seconds of the first call: app
        containers (and a running regular init container) together, then the sidecars
        one at a time in reverse spec order, each with what is left of the grace period.
        """
        if self.deadline is None:
            self.deadline = trio.current_time() + grace
            for record in records:
                if record.running:
                    self._event("Normal", "Killing", f"Stopping container {record.name}")
        stages = [[r for r in records if r.running and not r.sidecar]]
        stages.extend([r] for r in reversed(records) if r.sidecar and r.running)
        for stage in stages:
            if not stage:
                continue
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    for record in stage:
                        nursery.start_soon(self._kill, record, container_of, pod_ip)
            self._scope = None
            if scope.cancelled_caught:
                return StopOutcome.CUT_SHORT
        if any(r.running for r in records):
            return StopOutcome.STILL_RUNNING
        return StopOutcome.STOPPED

    async def _kill(self, record: ContainerRecord, container_of: ContainerOf, pod_ip: str) -> None:
        """preStop, SIGTERM, SIGKILL at the deadline (:func:`.lifecycle.stop`)."""
        assert record.container_id is not None and self.deadline is not None
        container = container_of(record.name)
        ctx = (
            None
            if container is None
            else lifecycle.probe_context(self._runtime, record.container_id, container, pod_ip)
        )
        record.status = await lifecycle.stop(
            self._runtime, record, container, ctx, deadline=self.deadline, event=self._event
        )
        if not record.running:
            record.exited_at = trio.current_time()
            record.ready = False


async def remove_containers(runtime: ContainerRuntime, ids: list[ContainerId], *, key: str) -> None:
    """Remove the runtime's containers ``ids`` (taken from the list, last first); one
    that cannot be removed is logged and left."""
    while ids:
        container_id = ids.pop()
        try:
            await runtime.remove(container_id)
        except ContainerRuntimeError as exc:
            logger.debug("pod %s: removing old container %s: %s", key, container_id, exc)


def release_ip(ips: PodIPs, uid: str, *, key: str) -> None:
    """Give the pod's address back (a failure is logged: the IP allocator's problem)."""
    try:
        ips.release(uid)
    except PodIPError as exc:
        logger.warning("pod %s: releasing its IP: %s", key, exc)


async def clean_up(
    ctx: PodContext,
    pod: core_pb2.Pod,
    records: Iterable[ContainerRecord],
    stale: list[ContainerId],
    *,
    key: str,
) -> None:
    """Everything a deleted pod leaves on the node: its containers (the records' current
    and previous attempts, and ``stale``), its IP, its volumes and its logs."""
    for record in records:
        for container_id in (record.container_id, record.previous_id):
            if container_id:
                stale.append(container_id)
    await remove_containers(ctx.runtime, stale, key=key)
    meta = pod.metadata
    release_ip(ctx.ips, meta.uid, key=key)
    try:
        ctx.volumes.teardown(meta.uid)
    except OSError as exc:
        logger.warning("pod %s: removing its volumes: %s", key, exc)
    pod_logs = container_log_dir(ctx.logs_dir, meta.namespace, meta.name, meta.uid, "x").parent
    shutil.rmtree(pod_logs, ignore_errors=True)


async def delete_pod_object(api: PodDeleter, pod: core_pb2.Pod, *, key: str) -> bool:
    """Delete the Pod object with grace 0 and a uid precondition (a new pod of the same
    name is never touched); True once it is gone, False to retry later."""
    meta = pod.metadata
    try:
        await api.delete(
            "Pod", meta.name, namespace=meta.namespace, grace_period_seconds=0, uid=meta.uid
        )
    except (NotFound, Conflict):
        pass
    except ApiError as exc:
        logger.warning("pod %s: deleting it: %s (will retry)", key, exc)
        return False
    return True
