"""The namespace controller: deleting a namespace deletes everything in it, then it.

A Namespace is created holding the ``kubernetes`` entry in ``spec.finalizers`` (the API
server adds it, see :data:`actors.apiserver.lifecycle.NAMESPACE_FINALIZER`). Deleting it
only marks it: ``deletionTimestamp`` set, phase ``Terminating``, and from then on the API
server refuses new objects in it. This loop, as Kubernetes' namespace controller, then:

1. lists every namespaced kind (:data:`proto.k8s.kinds.KINDS` with ``namespaced``) in the
   namespace, live from the API server, and deletes each object not yet being deleted
   (background propagation: the garbage collector is not needed to empty a namespace,
   every object in it is deleted directly);
2. writes what it found to the namespace's status conditions, with Kubernetes' types
   and reasons: ``NamespaceDeletionContentFailure`` (a list or delete failed, and
   which), ``NamespaceContentRemaining`` (``pods. has 2 resource instances``: objects
   still there -- pods wait out their grace period until their node agent removes
   them), ``NamespaceFinalizersRemaining`` (objects held by finalizers);
3. while anything remains, looks again: when a pod of the namespace goes (pod watch), and
   at the latest after the remaining grace of the pods it waits for (or a short poll
   for other content);
4. once nothing remains, removes ``kubernetes`` from ``spec.finalizers``; the API
   server deletes the namespace when no other finalizer holds it.

A namespace without the ``kubernetes`` entry (created before the API server added it)
is left alone, as in Kubernetes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actors.apiserver.lifecycle import NAMESPACE_FINALIZER
from actors.client import ApiError, Conflict, NotFound
from actors.controller import Controller, Handlers, TransientError
from actors.controllers.context import ControllerContext
from proto.k8s import kinds

__all__ = [
    "CONTENT_FAILURE",
    "CONTENT_REMAINING",
    "FINALIZERS_REMAINING",
    "ContentReport",
    "NamespaceController",
    "conditions_for",
    "new_controller",
]

logger = logging.getLogger(__name__)

CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
POLL_WHILE_CONTENT_REMAINS = 2.0
"""Seconds between passes while objects without a grace period remain (held by finalizers)."""
MAX_WAIT = 15.0

NAMESPACED_KINDS = tuple(info for info in kinds.KINDS if info.namespaced)


@dataclass
class ContentReport:
    """What one deletion pass over a namespace found."""

    remaining: Counter[str] = field(default_factory=Counter)
    """Objects still there by ``resource.group`` (Kubernetes spells core as ``pods.``)."""
    finalizers: Counter[str] = field(default_factory=Counter)
    """Finalizers holding remaining objects, with how many objects each holds."""
    errors: list[str] = field(default_factory=list)
    wait: float | None = None
    """Seconds until the soonest remaining pod's grace period ends."""

    @property
    def done(self) -> bool:
        return not self.remaining and not self.errors


def _resource_name(info: kinds.KindInfo) -> str:
    return f"{info.resource}.{info.group}"


def conditions_for(report: ContentReport) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) of the namespace conditions for ``report``."""
    out = []
    if report.errors:
        out.append(
            (
                CONTENT_FAILURE,
                "True",
                "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(report.errors)} remaining: "
                + ", ".join(report.errors),
            )
        )
    else:
        out.append(
            (
                CONTENT_FAILURE,
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            )
        )
    if report.remaining:
        listed = ", ".join(
            f"{name} has {count} resource instances"
            for name, count in sorted(report.remaining.items())
        )
        out.append(
            (
                CONTENT_REMAINING,
                "True",
                "SomeResourcesRemain",
                f"Some resources are remaining: {listed}",
            )
        )
    else:
        out.append(
            (CONTENT_REMAINING, "False", "ContentRemoved", "All content successfully removed")
        )
    if report.finalizers:
        listed = ", ".join(
            f"{name} in {count} resource instances"
            for name, count in sorted(report.finalizers.items())
        )
        out.append(
            (
                FINALIZERS_REMAINING,
                "True",
                "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {listed}",
            )
        )
    else:
        out.append(
            (
                FINALIZERS_REMAINING,
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            )
        )
    return out


def _is_deleting(obj: Any) -> bool:
    return bool(obj.metadata.HasField("deletion_timestamp"))


def _seconds_until(timestamp: Any, now: datetime) -> float:
    return float((timestamp.ToDatetime(tzinfo=UTC) - now).total_seconds())


class NamespaceController(Controller):
    """The ``namespace`` loop: keys are namespace names."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.api = ctx.api
        self.namespaces = ctx.informers.informer("Namespace")
        self.pods = ctx.informers.informer("Pod")
        super().__init__(
            "namespace",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.namespaces,
        )
        self.pods.add_handler(Handlers(on_delete=self._pod_gone))

    def _pod_gone(self, pod: Any) -> None:
        ns = self.namespaces.cache.get(pod.metadata.namespace)
        if ns is not None and _is_deleting(ns):
            self.enqueue(ns.metadata.name)

    async def reconcile_key(self, key: str) -> float | None:
        ns = self.namespaces.cache.get(key)
        if ns is None or not _is_deleting(ns):
            return None
        if NAMESPACE_FINALIZER not in ns.spec.finalizers:
            return None
        report = await self.delete_content(ns.metadata.name)
        await self._write_conditions(ns, report)
        if not report.done:
            if report.errors:
                raise TransientError(
                    f"namespace {key}: " + "; ".join(report.errors)
                )  # retried with backoff
            wait = POLL_WHILE_CONTENT_REMAINS if report.wait is None else report.wait
            return min(max(wait, 0.2), MAX_WAIT)
        await self._finalize(ns)
        return None

    async def delete_content(self, namespace: str) -> ContentReport:
        """One pass: delete every object in ``namespace``; report what remains."""
        report = ContentReport()
        now = datetime.now(UTC)
        for info in NAMESPACED_KINDS:
            try:
                listed = await self.api.list_all(info, namespace=namespace, limit=500)
            except ApiError as exc:
                report.errors.append(f"listing {_resource_name(info)}: {exc}")
                continue
            for obj in listed.items:
                still = await self._delete_one(info, obj, report)
                if not still:
                    continue
                report.remaining[_resource_name(info)] += 1
                for finalizer in obj.metadata.finalizers:
                    report.finalizers[finalizer] += 1
                if info.kind == "Pod" and still.metadata.HasField("deletion_timestamp"):
                    left = _seconds_until(still.metadata.deletion_timestamp, now)
                    report.wait = left if report.wait is None else min(report.wait, left)
        return report

    async def _delete_one(self, info: kinds.KindInfo, obj: Any, report: ContentReport) -> Any:
        """Delete ``obj`` unless it is being deleted; the object if it is still there."""
        if _is_deleting(obj):
            return obj
        try:
            deleted = await self.api.delete(
                info,
                obj.metadata.name,
                namespace=obj.metadata.namespace,
                uid=obj.metadata.uid,
                propagation_policy="Background",
            )
        except (NotFound, Conflict):
            return None
        except ApiError as exc:
            report.errors.append(f"deleting {_resource_name(info)} {obj.metadata.name}: {exc}")
            return obj
        return deleted.object if deleted.pending else None

    async def _write_conditions(self, ns: Any, report: ContentReport) -> None:
        wanted = conditions_for(report)
        current = {c.type: c for c in ns.status.conditions}
        if all(
            t in current and (current[t].status, current[t].reason, current[t].message) == (s, r, m)
            for t, s, r, m in wanted
        ):
            return
        updated = type(ns)()
        updated.CopyFrom(ns)
        kept = [c for c in updated.status.conditions if c.type not in {w[0] for w in wanted}]
        del updated.status.conditions[:]
        updated.status.conditions.extend(kept)
        for type_, status, reason, message in wanted:
            condition = updated.status.conditions.add(
                type=type_, status=status, reason=reason, message=message
            )
            previous = current.get(type_)
            if previous is not None and previous.status == status:
                condition.last_transition_time.CopyFrom(previous.last_transition_time)
            else:
                condition.last_transition_time.GetCurrentTime()
        try:
            await self.api.update_status(updated)
        except (Conflict, NotFound) as exc:
            logger.debug("namespace %s: status not written (%s)", ns.metadata.name, exc)
        except ApiError as exc:
            logger.info("namespace %s: status not written (%s)", ns.metadata.name, exc)

    async def _finalize(self, ns: Any) -> None:
        current = ns
        for _ in range(5):
            remaining = [f for f in current.spec.finalizers if f != NAMESPACE_FINALIZER]
            patch = {
                "metadata": {"resourceVersion": current.metadata.resource_version},
                "spec": {"finalizers": remaining},
            }
            try:
                await self.api.patch_merge("Namespace", current.metadata.name, patch)
                logger.info("namespace %s: content deleted; finalized", current.metadata.name)
                return
            except NotFound:
                return
            except Conflict:
                try:
                    current = await self.api.get("Namespace", ns.metadata.name)
                except NotFound:
                    return
                if NAMESPACE_FINALIZER not in current.spec.finalizers:
                    return
            except ApiError as exc:
                raise TransientError(f"finalizing namespace {ns.metadata.name}: {exc}") from exc
        raise TransientError(f"namespace {ns.metadata.name} kept changing; will retry")


def new_controller(ctx: ControllerContext) -> Controller:
    """The namespace controller on ``ctx``'s shared informers."""
    return NamespaceController(ctx)
