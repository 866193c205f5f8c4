"""The ReplicaSet controller: exactly ``spec.replicas`` pods, whatever happens to them.

For each ReplicaSet key, :meth:`ReplicaSetController.reconcile` does what Kubernetes'
``syncReplicaSet`` does, level-triggered from the informers' caches:

1. Take the *active* pods of the namespace (not Succeeded/Failed, not being deleted:
   a terminating pod no longer counts, its replacement is made at once).
2. :func:`~.podcontrol.claim` them: keep the pods this ReplicaSet controls whose labels
   still match its selector, adopt matching orphans, release owned pods that stopped
   matching.
3. If the :class:`~.podcontrol.Expectations` of the key are satisfied -- every create
   and delete of the previous pass has been seen by the pod informer -- and the
   ReplicaSet is not being deleted, create the missing pods (slow-start batches, at most
   :data:`~.podcontrol.BURST_REPLICAS` per pass) or delete the surplus, chosen by
   :func:`~.podcontrol.deletion_order` (unscheduled, pending, not ready, doubled-up,
   shortest ready, most restarts, newest first).
4. Write the status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration, the ReplicaFailure condition) through ``UpdateStatus`` -- only
   when it changed.

While some pods are ready but not yet available (``minReadySeconds``), the key is looked
at again when the first of them becomes available, so ``availableReplicas`` follows
without a pod event. A create or delete that failed is recorded as an Event and the key
retried with backoff; the failed operations lower the expectations at once so the retry
is not blocked by them.

Why expectations: the cache lags the API server. Without them a second pass right after
creating 10 pods would see fewer than 10 and create again. With them the second pass
only updates status, and the pass after the informer has seen all 10 adds (or after 5
minutes, should a watch event be lost) counts again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import trio

from actors.client import ApiError, Conflict, NotFound
from actors.controller import (
    NORMAL,
    WARNING,
    Controller,
    Handlers,
    Informer,
    PermanentError,
    TransientError,
    selector_matches,
)
from actors.controller.cache import object_key

from . import podcontrol
from .context import ControllerContext

__all__ = ["ReplicaSetController", "compute_status", "new_controller"]

logger = logging.getLogger(__name__)

KIND = "ReplicaSet"
DELETE_CONCURRENCY = 16


class ReplicaSetController(Controller):
    """The ``replicaset`` loop; :attr:`expectations` is exposed for tests and metrics."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.api = ctx.api
        self.rs_informer: Informer = ctx.informers.informer(KIND)
        self.pod_informer: Informer = ctx.informers.informer("Pod")
        self.expectations = podcontrol.Expectations()
        super().__init__(
            "replicaset",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.rs_informer,
        )
        self.rs_informer.add_handler(
            Handlers(on_delete=lambda rs: self.expectations.forget(object_key(rs)))
        )
        self.pod_informer.add_handler(
            Handlers(
                on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
            )
        )
        self.depends_on([self.pod_informer])

    # ------------------------------------------------------------------ handlers

    def _resolve(self, namespace: str, ref: Any) -> Any | None:
        if ref is None or ref.kind != KIND:
            return None
        rs = self.rs_informer.cache.get_by_name(namespace, ref.name)
        if rs is None or rs.metadata.uid != ref.uid:
            return None
        return rs

    def _matching(self, pod: Any) -> list[Any]:
        out = []
        for rs in self.rs_informer.cache.list(pod.metadata.namespace):
            if not rs.spec.HasField("selector"):
                continue
            try:
                if selector_matches(rs.spec.selector, pod.metadata.labels):
                    out.append(rs)
            except ValueError:
                continue
        return out

    def _pod_added(self, pod: Any) -> None:
        if pod.metadata.HasField("deletion_timestamp"):
            self._pod_deleted(pod)
            return
        rs = self._resolve(pod.metadata.namespace, podcontrol.controller_of(pod))
        if rs is not None:
            key = object_key(rs)
            self.expectations.creation_observed(key)
            self.enqueue(key)
            return
        if podcontrol.controller_of(pod) is None:
            for rs in self._matching(pod):
                self.enqueue(object_key(rs))

    def _pod_updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        labels_changed = dict(old.metadata.labels) != dict(new.metadata.labels)
        if new.metadata.HasField("deletion_timestamp"):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref = podcontrol.controller_of(old)
        new_ref = podcontrol.controller_of(new)
        ref_changed = old_ref != new_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(old.metadata.namespace, old_ref)
            if previous is not None:
                self.enqueue(object_key(previous))
        if new_ref is not None:
            rs = self._resolve(new.metadata.namespace, new_ref)
            if rs is not None:
                self.enqueue(object_key(rs))
            return
        if labels_changed or ref_changed:
            for rs in self._matching(new):
                self.enqueue(object_key(rs))

    def _pod_deleted(self, pod: Any) -> None:
        rs = self._resolve(pod.metadata.namespace, podcontrol.controller_of(pod))
        if rs is None:
            return
        key = object_key(rs)
        self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
        self.enqueue(key)

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> float | None:
        rs = self.rs_informer.cache.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        if not rs.spec.HasField("selector") or not (
            rs.spec.selector.match_labels or rs.spec.selector.match_expressions
        ):
            raise PermanentError(
                "spec.selector is empty; a ReplicaSet must select its pods",
                reason="InvalidSelector",
            )
        need_sync = self.expectations.satisfied(key) and not rs.metadata.HasField(
            "deletion_timestamp"
        )
        candidates = [
            p
            for p in self.pod_informer.cache.list(rs.metadata.namespace)
            if podcontrol.is_pod_active(p)
        ]
        try:
            claimed = await podcontrol.claim(self.api, rs, rs.spec.selector, candidates)
        except ValueError as exc:
            raise PermanentError(str(exc), reason="InvalidSelector") from exc
        pods = claimed.owned
        failure: tuple[str, str] | None = None
        if need_sync:
            failure = await self._manage(key, rs, pods)
        now = datetime.now(UTC)
        status = compute_status(rs, pods, now=now, failure=failure)
        await self._write_status(rs, status)
        if failure is not None:
            raise TransientError(f"{failure[0]}: {failure[1]}")
        return _next_availability_check(rs, pods, now)

    async def _manage(self, key: str, rs: Any, pods: Sequence[Any]) -> tuple[str, str] | None:
        """Create or delete pods; ``(reason, message)`` of the first failure, or None."""
        want = rs.spec.replicas
        diff = len(pods) - want
        if diff < 0:
            count = min(-diff, podcontrol.BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            logger.info(
                "replicaset=%s: too few replicas (have %d, want %d), creating %d",
                key,
                len(pods),
                want,
                count,
            )
            result = await podcontrol.create_pods(
                self.api,
                rs,
                rs.spec.template,
                count,
                recorder=self.recorder,
                on_failed=lambda: self.expectations.creation_observed(key),
            )
            if result.errors:
                return "FailedCreate", str(result.errors[0])
            return None
        if diff > 0:
            count = min(diff, podcontrol.BURST_REPLICAS)
            victims = podcontrol.deletion_order(pods)[:count]
            self.expectations.expect_deletions(key, [podcontrol.pod_key(p) for p in victims])
            logger.info(
                "replicaset=%s: too many replicas (have %d, want %d), deleting %d",
                key,
                len(pods),
                want,
                count,
            )
            return await self._delete_pods(key, rs, victims)
        return None

    async def _delete_pods(
        self, key: str, rs: Any, victims: Sequence[Any]
    ) -> tuple[str, str] | None:
        errors: list[ApiError] = []
        limit = trio.CapacityLimiter(DELETE_CONCURRENCY)

        async def delete(pod: Any) -> None:
            async with limit:
                try:
                    await self.api.delete(
                        "Pod",
                        pod.metadata.name,
                        namespace=pod.metadata.namespace,
                        uid=pod.metadata.uid,
                    )
                except (NotFound, Conflict):
                    # Already gone (or replaced): its delete event is, or was, on the way.
                    self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
                    return
                except ApiError as exc:
                    self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
                    errors.append(exc)
                    if self.recorder is not None:
                        self.recorder.event(rs, WARNING, "FailedDelete", f"Error deleting: {exc}")
                    return
            if self.recorder is not None:
                self.recorder.event(
                    rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}"
                )

        async with trio.open_nursery() as nursery:
            for pod in victims:
                nursery.start_soon(delete, pod)
        if errors:
            return "FailedDelete", str(errors[0])
        return None

    async def _write_status(self, rs: Any, status: Any) -> None:
        if _same_status(rs.status, status):
            return
        current = rs
        for _ in range(2):
            updated = type(current)()
            updated.CopyFrom(current)
            updated.status.CopyFrom(status)
            # observedGeneration is of the object we computed from, not of a newer one.
            try:
                await self.api.update_status(updated)
                return
            except NotFound:
                return
            except Conflict:
                try:
                    current = await self.api.get(
                        type(rs), rs.metadata.name, namespace=rs.metadata.namespace
                    )
                except NotFound:
                    return
                if current.metadata.uid != rs.metadata.uid:
                    return
        raise TransientError(f"could not write the status of {object_key(rs)}: conflicts")


def compute_status(
    rs: Any,
    pods: Sequence[Any],
    *,
    now: datetime,
    failure: tuple[str, str] | None = None,
) -> Any:
    """The ReplicaSet status for the active pods it controls (Kubernetes' calculateStatus)."""
    status = type(rs.status)()
    template_labels = dict(rs.spec.template.metadata.labels)
    status.replicas = len(pods)
    status.fully_labeled_replicas = sum(
        1 for p in pods if all(p.metadata.labels.get(k) == v for k, v in template_labels.items())
    )
    status.ready_replicas = sum(1 for p in pods if podcontrol.is_pod_ready(p))
    status.available_replicas = sum(
        1 for p in pods if podcontrol.is_pod_available(p, rs.spec.min_ready_seconds, now)
    )
    status.observed_generation = rs.metadata.generation
    previous = next((c for c in rs.status.conditions if c.type == "ReplicaFailure"), None)
    for condition in rs.status.conditions:
        if condition.type != "ReplicaFailure":
            status.conditions.append(condition)
    if failure is not None:
        reason, message = failure
        condition = status.conditions.add(type="ReplicaFailure", status="True")
        condition.reason = reason
        condition.message = message
        if previous is not None and previous.status == "True":
            condition.last_transition_time.CopyFrom(previous.last_transition_time)
        else:
            condition.last_transition_time.FromDatetime(now)
    return status


def _same_status(a: Any, b: Any) -> bool:
    return bool(a == b)


def _next_availability_check(rs: Any, pods: Sequence[Any], now: datetime) -> float | None:
    if rs.spec.min_ready_seconds <= 0:
        return None
    waits = [podcontrol.available_in(p, rs.spec.min_ready_seconds, now) for p in pods]
    pending = [w for w in waits if 0 < w < math.inf]
    if not pending:
        return None
    return min(pending) + 0.05


def new_controller(ctx: ControllerContext) -> Controller:
    """The ReplicaSet controller on ``ctx``'s shared informers."""
    return ReplicaSetController(ctx)
