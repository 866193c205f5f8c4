"""The Deployment controller: ReplicaSets per template, rolled as the strategy says.

:meth:`DeploymentController.reconcile_key` is Kubernetes' ``syncDeployment``, level-
triggered from the Deployment, ReplicaSet and Pod caches:

1. Claim the namespace's ReplicaSets (adopt orphans matching the selector, release those
   that stopped matching; :func:`~actors.controllers.podcontrol.claim`).
2. A Deployment being deleted only gets its status refreshed.
3. ``spec.paused`` toggles the Progressing condition to DeploymentPaused /
   DeploymentResumed. A paused Deployment, or one whose ``spec.replicas`` changed (a
   ReplicaSet's ``desired-replicas`` annotation disagrees), is only *scaled*: the
   replicas go to the one active ReplicaSet, or are spread proportionally over several
   mid-rollout (:func:`.rollout.plan_proportional`); a paused Deployment also prunes its
   history.
4. Otherwise one step of the strategy:

   * **RollingUpdate** -- find or create the new ReplicaSet (``<name>-<hash>``); scale it
     up within ``maxSurge`` (and return: one step per pass), else scale old ones down
     within ``maxUnavailable`` (:func:`.rollout.plan_reconcile_old`); once complete,
     delete old ReplicaSets beyond ``revisionHistoryLimit``.
   * **Recreate** -- scale every old ReplicaSet to 0, wait until none of their pods is
     left running (terminating ones included), then create / scale up the new one.

5. Write the status (replicas, updated/ready/available/unavailable, observedGeneration,
   collisionCount, conditions) only when it changed, and return the seconds left before
   the progress deadline of an unfinished rollout so that ``ProgressDeadlineExceeded`` is
   set on time without any event.

Writes use the ``resourceVersion`` of the cached object: a write based on a stale cache
fails with Conflict and the key is retried after the cache caught up, never applied
twice. Each ReplicaSet the controller makes carries the controller reference, the
``pod-template-hash`` label (also in its selector and template), and the annotations
``deployment.kubernetes.io/revision``, ``desired-replicas`` and ``max-replicas``; the
Deployment carries the revision of its newest ReplicaSet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from actors.client import AlreadyExists, Conflict, NotFound
from actors.controller import (
    NORMAL,
    Controller,
    Handlers,
    Informer,
    PermanentError,
    TransientError,
    selector_matches,
)
from actors.controller.cache import object_key

from .. import podcontrol
from ..context import ControllerContext
from . import conditions as cond
from . import rollout
from .hashing import POD_TEMPLATE_HASH_LABEL, compute_hash

__all__ = ["DeploymentController", "calculate_status", "equal_ignore_hash", "new_controller"]

logger = logging.getLogger(__name__)

KIND = "Deployment"

SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        rollout.REVISION_ANNOTATION,
        rollout.REVISION_HISTORY_ANNOTATION,
        rollout.DESIRED_REPLICAS_ANNOTATION,
        rollout.MAX_REPLICAS_ANNOTATION,
        "deprecated.deployment.rollback.to",
    }
)
"""Deployment annotations never copied to its ReplicaSets (Kubernetes' annotationsToSkip)."""


def _copy(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """Two pod templates are equal but for their ``pod-template-hash`` labels."""
    a, b = _copy(a), _copy(b)
    a.metadata.labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    b.metadata.labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return bool(a == b)


def find_new_replica_set(d: Any, rss: Sequence[Any]) -> Any | None:
    """The oldest ReplicaSet whose template is the Deployment's."""
    for rs in rollout.by_creation(rss):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def calculate_status(
    d: Any, all_rss: Sequence[Any | None], new_rs: Any | None, now: datetime
) -> Any:
    """The Deployment status the ReplicaSets' statuses add up to (Kubernetes' calculateStatus)."""
    status = type(d.status)()
    status.observed_generation = d.metadata.generation
    status.replicas = rollout.status_replica_count(all_rss)
    status.updated_replicas = rollout.status_replica_count([new_rs])
    status.ready_replicas = rollout.ready_count(all_rss)
    status.available_replicas = sum(
        rs.status.available_replicas for rs in all_rss if rs is not None
    )
    status.unavailable_replicas = max(0, rollout.replica_count(all_rss) - status.available_replicas)
    if d.status.HasField("collision_count"):
        status.collision_count = d.status.collision_count
    status.conditions.extend(d.status.conditions)
    if status.available_replicas >= d.spec.replicas - rollout.max_unavailable(d):
        available = cond.new_condition(
            cond.AVAILABLE, "True", cond.MIN_AVAILABLE, "Deployment has minimum availability.", now
        )
    else:
        available = cond.new_condition(
            cond.AVAILABLE,
            "False",
            cond.MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    cond.set_condition(status, available)
    return status


class DeploymentController(Controller):
    """The ``deployment`` loop (see the module doc)."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.api = ctx.api
        self.d_informer: Informer = ctx.informers.informer(KIND)
        self.rs_informer: Informer = ctx.informers.informer("ReplicaSet")
        self.pod_informer: Informer = ctx.informers.informer("Pod")
        super().__init__(
            "deployment",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.d_informer,
        )
        self.rs_informer.add_handler(
            Handlers(on_add=self._rs_added, on_update=self._rs_updated, on_delete=self._rs_deleted)
        )
        self.pod_informer.add_handler(Handlers(on_delete=self._pod_deleted))
        self.depends_on([self.rs_informer, self.pod_informer])

    # ------------------------------------------------------------------ handlers

    def _resolve(self, namespace: str, ref: Any) -> Any | None:
        if ref is None or ref.kind != KIND:
            return None
        d = self.d_informer.cache.get_by_name(namespace, ref.name)
        if d is None or d.metadata.uid != ref.uid:
            return None
        return d

    def _enqueue_matching(self, rs: Any) -> None:
        for d in self.d_informer.cache.list(rs.metadata.namespace):
            try:
                if d.spec.HasField("selector") and selector_matches(
                    d.spec.selector, rs.metadata.labels
                ):
                    self.enqueue(object_key(d))
            except ValueError:
                continue

    def _rs_added(self, rs: Any) -> None:
        d = self._resolve(rs.metadata.namespace, podcontrol.controller_of(rs))
        if d is not None:
            self.enqueue(object_key(d))
        elif podcontrol.controller_of(rs) is None and not rs.metadata.HasField(
            "deletion_timestamp"
        ):
            self._enqueue_matching(rs)

    def _rs_updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        old_ref, new_ref = podcontrol.controller_of(old), podcontrol.controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            previous = self._resolve(old.metadata.namespace, old_ref)
            if previous is not None:
                self.enqueue(object_key(previous))
        if new_ref is not None:
            d = self._resolve(new.metadata.namespace, new_ref)
            if d is not None:
                self.enqueue(object_key(d))
            return
        if old_ref != new_ref or dict(old.metadata.labels) != dict(new.metadata.labels):
            self._enqueue_matching(new)

    def _rs_deleted(self, rs: Any) -> None:
        d = self._resolve(rs.metadata.namespace, podcontrol.controller_of(rs))
        if d is not None:
            self.enqueue(object_key(d))

    def _pod_deleted(self, pod: Any) -> None:
        # Recreate waits for the old pods to be gone: look again when one goes.
        ref = podcontrol.controller_of(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return
        rs = self.rs_informer.cache.get_by_name(pod.metadata.namespace, ref.name)
        if rs is None:
            return
        d = self._resolve(rs.metadata.namespace, podcontrol.controller_of(rs))
        if d is not None and d.spec.strategy.type == "Recreate":
            self.enqueue(object_key(d))

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> float | None:
        cached = self.d_informer.cache.get(key)
        if cached is None:
            return None
        d = _copy(cached)
        selector = d.spec.selector
        if not d.spec.HasField("selector") or not (
            selector.match_labels or selector.match_expressions
        ):
            raise PermanentError(
                "spec.selector is empty; a Deployment must select its pods", reason="SelectingAll"
            )
        sync = _Sync(self, d)
        try:
            return await sync.run()
        except Conflict as exc:
            raise TransientError(f"{key}: {exc}") from exc
        except ValueError as exc:
            raise PermanentError(str(exc), reason="InvalidSpec") from exc


class _Sync:
    """One pass over one Deployment: its state and the writes it makes."""

    def __init__(self, ctrl: DeploymentController, d: Any) -> None:
        self.ctrl = ctrl
        self.api = ctrl.api
        self.d = d
        self.key = object_key(d)
        self.now = datetime.now(UTC)
        self.rss: list[Any] = []

    # ------------------------------------------------------------------ entry

    async def run(self) -> float | None:
        d = self.d
        candidates = self.ctrl.rs_informer.cache.list(d.metadata.namespace)
        claimed = await podcontrol.claim(
            self.api, d, d.spec.selector, candidates, kind="ReplicaSet"
        )
        self.rss = list(claimed.owned)
        if d.metadata.HasField("deletion_timestamp"):
            new_rs, old_rss = self._split()
            await self._write_status(calculate_status(d, [*old_rss, new_rs], new_rs, self.now))
            return None
        await self._check_paused_conditions()
        if d.spec.paused or self._is_scaling_event():
            return await self._scale_only()
        if d.spec.strategy.type == "Recreate":
            return await self._rollout_recreate()
        return await self._rollout_rolling()

    def _split(self) -> tuple[Any | None, list[Any]]:
        new_rs = find_new_replica_set(self.d, self.rss)
        old = [rs for rs in self.rss if new_rs is None or rs.metadata.uid != new_rs.metadata.uid]
        return new_rs, old

    def _replace(self, rs: Any) -> None:
        self.rss = [rs if r.metadata.uid == rs.metadata.uid else r for r in self.rss]
        if all(r.metadata.uid != rs.metadata.uid for r in self.rss):
            self.rss.append(rs)

    # ------------------------------------------------------------------ strategies

    async def _rollout_rolling(self) -> float | None:
        new_rs, old_rss = await self._new_and_old(create=True)
        assert new_rs is not None
        target = rollout.plan_new_replica_set(self.d, [*old_rss, new_rs], new_rs)
        if target is not None:
            new_rs = await self._scale(new_rs, target)
            return await self._sync_rollout_status(new_rs)
        plan = rollout.plan_reconcile_old(self.d, old_rss, new_rs)
        if plan:
            for rs in old_rss:
                if rs.metadata.name in plan:
                    await self._scale(rs, plan[rs.metadata.name])
            return await self._sync_rollout_status(new_rs)
        if rollout.deployment_complete(self.d, self.d.status):
            await self._cleanup(old_rss)
        return await self._sync_rollout_status(new_rs)

    async def _rollout_recreate(self) -> float | None:
        new_rs, old_rss = await self._new_and_old(create=False)
        running_old = rollout.active(old_rss)
        if running_old:
            for rs in running_old:
                await self._scale(rs, 0)
            return await self._sync_rollout_status(new_rs)
        if self._old_pods_running(new_rs, old_rss):
            return await self._sync_rollout_status(new_rs)
        if new_rs is None:
            new_rs, old_rss = await self._new_and_old(create=True)
            assert new_rs is not None
        if new_rs.spec.replicas != self.d.spec.replicas:
            new_rs = await self._scale(new_rs, self.d.spec.replicas)
        if rollout.deployment_complete(self.d, self.d.status):
            await self._cleanup(old_rss)
        return await self._sync_rollout_status(new_rs)

    def _old_pods_running(self, new_rs: Any | None, old_rss: Sequence[Any]) -> bool:
        if rollout.status_replica_count(old_rss) > 0:
            return True
        old_uids = {rs.metadata.uid for rs in old_rss}
        for pod in self.ctrl.pod_informer.cache.list(self.d.metadata.namespace):
            ref = podcontrol.controller_of(pod)
            if ref is None or ref.uid not in old_uids:
                continue
            if pod.status.phase not in ("Failed", "Succeeded"):
                return True
        return False

    async def _scale_only(self) -> float | None:
        """Kubernetes' ``sync``: scale (paused, or replicas changed), prune if paused, status."""
        new_rs, old_rss = await self._new_and_old(create=False)
        d = self.d
        latest = rollout.find_active_or_latest(new_rs, old_rss)
        plan = rollout.plan_proportional(d, new_rs, old_rss)
        if (
            latest is not None
            or rollout.is_saturated(d, new_rs)
            or not rollout.is_rolling_update(d)
        ):
            targets = [
                rs for rs in [*old_rss, new_rs] if rs is not None and rs.metadata.name in plan
            ]
        else:
            targets = rollout.active([*old_rss, new_rs])
        for rs in targets:
            await self._scale(rs, plan.get(rs.metadata.name, rs.spec.replicas))
        new_rs, old_rss = self._split()
        if d.spec.paused:
            await self._cleanup(old_rss)
        await self._write_status(calculate_status(d, [*old_rss, new_rs], new_rs, self.now))
        return None

    def _is_scaling_event(self) -> bool:
        new_rs, old_rss = self._split()
        for rs in rollout.active([*old_rss, new_rs]):
            text = rs.metadata.annotations.get(rollout.DESIRED_REPLICAS_ANNOTATION)
            if text is None:
                continue
            try:
                desired = int(text)
            except ValueError:
                continue
            if desired != self.d.spec.replicas:
                return True
        return False

    # ------------------------------------------------------------------ new replica set

    async def _new_and_old(self, *, create: bool) -> tuple[Any | None, list[Any]]:
        """Kubernetes' getAllReplicaSetsAndSyncRevision: the new ReplicaSet (made when
        ``create``; its annotations brought up to date) and all the others."""
        existing, old_rss = self._split()
        new_revision = rollout.max_revision(old_rss) + 1
        if existing is not None:
            new_rs = await self._sync_existing_new(existing, new_revision)
        elif create:
            new_rs = await self._create_new(old_rss, new_revision)
        else:
            new_rs = None
        return new_rs, [
            rs for rs in self.rss if new_rs is None or rs.metadata.uid != new_rs.metadata.uid
        ]

    def _set_new_rs_annotations(self, rs: Any, new_revision: int, *, exists: bool) -> bool:
        d = self.d
        changed = False
        for k, v in d.metadata.annotations.items():
            if k in SKIPPED_ANNOTATIONS or rs.metadata.annotations.get(k) == v:
                continue
            rs.metadata.annotations[k] = v
            changed = True
        old = rollout.revision(rs)
        if old < new_revision:
            rs.metadata.annotations[rollout.REVISION_ANNOTATION] = str(new_revision)
            changed = True
        if not exists:
            changed = self._set_replicas_annotations(rs) or changed
        return changed

    def _set_replicas_annotations(self, rs: Any) -> bool:
        want = {
            rollout.DESIRED_REPLICAS_ANNOTATION: str(self.d.spec.replicas),
            rollout.MAX_REPLICAS_ANNOTATION: str(self.d.spec.replicas + rollout.max_surge(self.d)),
        }
        changed = False
        for k, v in want.items():
            if rs.metadata.annotations.get(k) != v:
                rs.metadata.annotations[k] = v
                changed = True
        return changed

    async def _sync_existing_new(self, existing: Any, new_revision: int) -> Any:
        rs = _copy(existing)
        annotations_changed = self._set_new_rs_annotations(rs, new_revision, exists=True)
        if annotations_changed or rs.spec.min_ready_seconds != self.d.spec.min_ready_seconds:
            rs.spec.min_ready_seconds = self.d.spec.min_ready_seconds
            rs = await self.api.update(rs)
            self._replace(rs)
            return rs
        await self._set_deployment_revision(
            rs.metadata.annotations.get(rollout.REVISION_ANNOTATION, "")
        )
        if (
            cond.has_progress_deadline(self.d)
            and cond.get_condition(self.d.status, cond.PROGRESSING) is None
        ):
            status = _copy(self.d.status)
            cond.set_condition(
                status,
                cond.new_condition(
                    cond.PROGRESSING,
                    "True",
                    cond.FOUND_NEW_RS,
                    f'Found new replica set "{rs.metadata.name}"',
                    self.now,
                ),
            )
            await self._write_status(status)
        return rs

    async def _create_new(self, old_rss: Sequence[Any], new_revision: int) -> Any:
        d = self.d
        collision = d.status.collision_count if d.status.HasField("collision_count") else None
        pod_hash = compute_hash(d.spec.template, collision)
        rs = self.ctrl.rs_informer.kind.new()
        rs.metadata.name = f"{d.metadata.name}-{pod_hash}"
        rs.metadata.namespace = d.metadata.namespace
        rs.metadata.owner_references.append(podcontrol.controller_ref(d))
        rs.spec.template.CopyFrom(d.spec.template)
        rs.spec.template.metadata.labels[POD_TEMPLATE_HASH_LABEL] = pod_hash
        rs.metadata.labels.update(rs.spec.template.metadata.labels)
        rs.spec.selector.CopyFrom(d.spec.selector)
        rs.spec.selector.match_labels[POD_TEMPLATE_HASH_LABEL] = pod_hash
        rs.spec.min_ready_seconds = d.spec.min_ready_seconds
        rs.spec.replicas = rollout.new_rs_new_replicas(d, old_rss, None)
        self._set_new_rs_annotations(rs, new_revision, exists=False)
        try:
            created = await self.api.create(rs)
        except AlreadyExists:
            return await self._on_name_taken(rs)
        self._replace(created)
        if created.spec.replicas > 0:
            self._event(
                "ScalingReplicaSet",
                f"Scaled up replica set {created.metadata.name} to {created.spec.replicas}",
            )
        await self._set_deployment_revision(str(new_revision))
        if cond.has_progress_deadline(d):
            status = _copy(d.status)
            cond.set_condition(
                status,
                cond.new_condition(
                    cond.PROGRESSING,
                    "True",
                    cond.NEW_RS_CREATED,
                    f'Created new replica set "{created.metadata.name}"',
                    self.now,
                ),
            )
            await self._write_status(status)
        return created

    async def _on_name_taken(self, wanted: Any) -> Any:
        """The name is taken: our own ReplicaSet the cache has not shown yet, or a hash
        collision -- then bump ``status.collisionCount`` so the next pass picks a new name."""
        d = self.d
        try:
            found: Any = await self.api.get(
                "ReplicaSet", wanted.metadata.name, namespace=d.metadata.namespace
            )
        except NotFound as exc:
            raise TransientError(f"replica set {wanted.metadata.name} vanished; retrying") from exc
        if podcontrol.is_owned_by(found, d) and equal_ignore_hash(
            found.spec.template, d.spec.template
        ):
            self._replace(found)
            return found
        status = _copy(d.status)
        status.collision_count = (
            d.status.collision_count if d.status.HasField("collision_count") else 0
        ) + 1
        await self._write_status(status)
        raise TransientError(
            f"hash collision: replica set {wanted.metadata.name} exists with another template; "
            f"collisionCount is now {status.collision_count}"
        )

    async def _set_deployment_revision(self, revision: str) -> None:
        if not revision or self.d.metadata.annotations.get(rollout.REVISION_ANNOTATION) == revision:
            return
        patched = await self.api.patch_merge(
            KIND,
            self.d.metadata.name,
            {
                "metadata": {
                    "annotations": {rollout.REVISION_ANNOTATION: revision},
                    "resourceVersion": self.d.metadata.resource_version,
                }
            },
            namespace=self.d.metadata.namespace,
        )
        self._adopt_written(patched)

    def _adopt_written(self, written: Any) -> None:
        """Carry on from what the server stored, unless someone changed the spec meanwhile."""
        if written.metadata.generation != self.d.metadata.generation:
            raise TransientError(f"{self.key} changed during the sync; retrying")
        self.d = _copy(written)

    # ------------------------------------------------------------------ writes

    async def _scale(self, rs: Any, replicas: int) -> Any:
        """Set ``rs``'s replicas (and the replicas annotations); an Event if the size moved."""
        copy = _copy(rs)
        copy.spec.replicas = replicas
        annotations_changed = self._set_replicas_annotations(copy)
        if replicas == rs.spec.replicas and not annotations_changed:
            return rs
        updated = await self.api.update(copy)
        self._replace(updated)
        if replicas != rs.spec.replicas:
            direction = "up" if replicas > rs.spec.replicas else "down"
            self._event(
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {rs.metadata.name} to {replicas} "
                f"from {rs.spec.replicas}",
            )
        return updated

    async def _cleanup(self, old_rss: Sequence[Any]) -> None:
        """Delete the oldest ReplicaSets beyond ``revisionHistoryLimit`` (scaled-down ones only)."""
        d = self.d
        if not d.spec.HasField("revision_history_limit"):
            return
        alive = [rs for rs in old_rss if not rs.metadata.HasField("deletion_timestamp")]
        excess = len(alive) - d.spec.revision_history_limit
        if excess <= 0:
            return
        alive = sorted(rollout.by_creation(alive), key=rollout.revision)
        for rs in alive[:excess]:
            if (
                rs.status.replicas != 0
                or rs.spec.replicas != 0
                or rs.metadata.generation > rs.status.observed_generation
            ):
                continue
            logger.info("deployment=%s: deleting old replica set %s", self.key, rs.metadata.name)
            try:
                await self.api.delete(
                    "ReplicaSet",
                    rs.metadata.name,
                    namespace=rs.metadata.namespace,
                    uid=rs.metadata.uid,
                )
            except (NotFound, Conflict):
                pass

    async def _check_paused_conditions(self) -> None:
        d = self.d
        if not cond.has_progress_deadline(d):
            return
        current = cond.get_condition(d.status, cond.PROGRESSING)
        if current is not None and current.reason == cond.TIMED_OUT:
            return
        paused_shown = current is not None and current.reason == cond.PAUSED
        if d.spec.paused and not paused_shown:
            new = cond.new_condition(
                cond.PROGRESSING, "Unknown", cond.PAUSED, "Deployment is paused", self.now
            )
        elif not d.spec.paused and paused_shown:
            new = cond.new_condition(
                cond.PROGRESSING, "Unknown", cond.RESUMED, "Deployment is resumed", self.now
            )
        else:
            return
        status = _copy(d.status)
        cond.set_condition(status, new)
        await self._write_status(status)

    async def _sync_rollout_status(self, new_rs: Any | None) -> float | None:
        d = self.d
        new_rs = next(
            (
                rs
                for rs in self.rss
                if new_rs is not None and rs.metadata.uid == new_rs.metadata.uid
            ),
            new_rs,
        )
        all_rss = [
            *[rs for rs in self.rss if new_rs is None or rs.metadata.uid != new_rs.metadata.uid],
            new_rs,
        ]
        status = calculate_status(d, all_rss, new_rs, self.now)
        name = new_rs.metadata.name if new_rs is not None else d.metadata.name
        if not cond.has_progress_deadline(d):
            cond.remove_condition(status, cond.PROGRESSING)
        current = cond.get_condition(d.status, cond.PROGRESSING)
        finished = (
            status.replicas == status.updated_replicas
            and current is not None
            and current.reason == cond.NEW_RS_AVAILABLE
        )
        if cond.has_progress_deadline(d) and not finished:
            if rollout.deployment_complete(d, status):
                cond.set_condition(
                    status,
                    cond.new_condition(
                        cond.PROGRESSING,
                        "True",
                        cond.NEW_RS_AVAILABLE,
                        f'ReplicaSet "{name}" has successfully progressed.',
                        self.now,
                    ),
                )
            elif rollout.deployment_progressing(d, status):
                progressing = cond.new_condition(
                    cond.PROGRESSING,
                    "True",
                    cond.RS_UPDATED,
                    f'ReplicaSet "{name}" is progressing.',
                    self.now,
                )
                if current is not None and current.status == "True":
                    progressing.last_transition_time.CopyFrom(current.last_transition_time)
                cond.remove_condition(status, cond.PROGRESSING)
                status.conditions.append(progressing)
            elif cond.timed_out(d, status, self.now):
                cond.set_condition(
                    status,
                    cond.new_condition(
                        cond.PROGRESSING,
                        "False",
                        cond.TIMED_OUT,
                        f'ReplicaSet "{name}" has timed out progressing.',
                        self.now,
                    ),
                )
                if current is None or current.reason != cond.TIMED_OUT:
                    self._event(
                        cond.TIMED_OUT, f"Deployment {d.metadata.name} has timed out progressing."
                    )
        failure = _replica_failure(new_rs, all_rss)
        if failure is not None:
            cond.set_condition(status, failure)
        else:
            cond.remove_condition(status, cond.REPLICA_FAILURE)
        await self._write_status(status)
        if rollout.deployment_complete(d, status):
            return None
        left = cond.seconds_to_deadline(d, status, self.now)
        return None if left is None else left + 0.05

    async def _write_status(self, status: Any) -> None:
        if self.d.status == status:
            return
        copy = _copy(self.d)
        copy.status.CopyFrom(status)
        try:
            written = await self.api.update_status(copy)
        except NotFound:
            return
        self._adopt_written(written)

    def _event(self, reason: str, message: str) -> None:
        if self.ctrl.recorder is not None:
            self.ctrl.recorder.event(self.d, NORMAL, reason, message)


def _replica_failure(new_rs: Any | None, all_rss: Sequence[Any | None]) -> Any | None:
    ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
    for rs in ordered:
        if rs is None:
            continue
        for c in rs.status.conditions:
            if c.type == cond.REPLICA_FAILURE and c.status == "True":
                failure = cond.new_condition(
                    cond.REPLICA_FAILURE, "True", c.reason, c.message, datetime.now(UTC)
                )
                if c.HasField("last_transition_time"):
                    failure.last_transition_time.CopyFrom(c.last_transition_time)
                return failure
    return None


def new_controller(ctx: ControllerContext) -> Controller:
    """The Deployment controller on ``ctx``'s shared informers."""
    return DeploymentController(ctx)
