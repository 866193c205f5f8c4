"""The Job controller's reconcile: pods until enough succeed, and an exact count of them.

See the package doc for the behaviour; this module is the machinery. One pass over a Job
key, as Kubernetes' ``syncJob``:

1. Read the Job and the pods it controls from the caches.
2. Work out the counts: ``succeeded``/``failed`` are the status counters plus the pods in
   ``status.uncountedTerminatedPods`` plus newly finished pods (see *Tracking*).
3. Decide whether the Job has failed (``failed > backoffLimit``, or restarts of
   ``OnFailure`` pods reaching it: ``BackoffLimitExceeded``; ``activeDeadlineSeconds``
   passed: ``DeadlineExceeded``) -- then delete its active pods -- or else create or
   delete pods towards ``min(parallelism, completions - succeeded)`` (respecting the
   failure backoff and ``suspend``), and whether it is complete.
4. Track: write the newly finished pods' uids into ``uncountedTerminatedPods`` (and the
   interim ``SuccessCriteriaMet`` / ``FailureTarget`` condition), remove their tracking
   finalizers, then move them from the uid lists into the counters and, once nothing is
   uncounted or terminating, add ``Complete`` or ``Failed``.

Tracking, and why nothing is counted twice
    Every pod is created with the finalizer ``batch.kubernetes.io/job-tracking``, so it
    cannot vanish before it is counted. A finished pod is counted in three writes, each
    guarded: (a) its uid is added to ``uncountedTerminatedPods`` -- a status write with the
    resourceVersion the pass read, so it fails if the status moved on; (b) its finalizer
    is removed -- only after (a) succeeded; (c) uids whose pods no longer carry the
    finalizer move into ``succeeded``/``failed`` -- again conditional on the
    resourceVersion. A pod is a candidate for (a) only if it still has the finalizer in
    a *consistent* list from the API server (not just the cache): a pod already through
    (b) never has it again, so a stale cache after a restart cannot make the controller
    count it once more. Indexed Jobs count succeeded pods by index (a set) instead.
    Pods whose Job is finished, or gone (the cache says so and a read from the API
    server confirms it), lose the finalizer so that nothing keeps them from deletion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from actors.client import ApiError, Conflict, NotFound
from actors.controller import (
    NORMAL,
    WARNING,
    Controller,
    Handlers,
    Informer,
    TransientError,
    selector_to_string,
)
from actors.controller.cache import object_key

from .. import podcontrol
from ..context import ControllerContext
from .backoff import DEFAULT_POD_FAILURE_BACKOFF, PodFailureBackoff
from .indexes import (
    COMPLETION_INDEX_KEY,
    completion_index,
    first_pending,
    format_indexes,
    parse_indexes,
)

__all__ = [
    "JOB_COMPLETION_INDEX_ENV",
    "MAX_UNCOUNTED",
    "TRACKING_FINALIZER",
    "JobController",
    "is_finished",
    "past_backoff_limit_on_failure",
]

logger = logging.getLogger(__name__)

KIND = "Job"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
JOB_COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_UNCOUNTED = 500
"""At most this many uids are added to ``uncountedTerminatedPods`` per pass (Kubernetes'
MaxUncountedPods), which keeps the status small; the rest wait for the next pass."""
CONCURRENCY = 16

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Finish:
    """How a Job ends: the interim and final condition types, with reason and message."""

    success: bool
    reason: str
    message: str

    @property
    def interim(self) -> str:
        return "SuccessCriteriaMet" if self.success else "FailureTarget"

    @property
    def final(self) -> str:
        return "Complete" if self.success else "Failed"


_COMPLETE = _Finish(True, "CompletionsReached", "Reached expected number of succeeded pods")
_BACKOFF = _Finish(False, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
_DEADLINE = _Finish(False, "DeadlineExceeded", "Job was active longer than specified deadline")


# ---------------------------------------------------------------------------------------
# predicates


def _condition(status: Any, type_: str) -> Any | None:
    for condition in status.conditions:
        if condition.type == type_:
            return condition
    return None


def _true(status: Any, type_: str) -> bool:
    condition = _condition(status, type_)
    return condition is not None and condition.status == "True"


def is_finished(job: Any) -> bool:
    """Whether ``job`` has a True ``Complete`` or ``Failed`` condition."""
    return _true(job.status, "Complete") or _true(job.status, "Failed")


def _has_finalizer(pod: Any) -> bool:
    return TRACKING_FINALIZER in pod.metadata.finalizers


def _is_failed(pod: Any) -> bool:
    """Failed, or being deleted before it succeeded (Kubernetes counts that as a failure:
    such a pod might never reach a terminal phase)."""
    if pod.status.phase == "Failed":
        return True
    return pod.metadata.HasField("deletion_timestamp") and pod.status.phase != "Succeeded"


def _is_terminating(pod: Any) -> bool:
    return pod.metadata.HasField("deletion_timestamp") and pod.status.phase not in (
        "Succeeded",
        "Failed",
    )


def past_backoff_limit_on_failure(job: Any, pods: Sequence[Any]) -> bool:
    """For ``restartPolicy: OnFailure``: the container restarts of the pending and running
    pods reach ``backoffLimit`` (any restart at all when it is 0), as Kubernetes counts."""
    if job.spec.template.spec.restart_policy != "OnFailure":
        return False
    restarts = sum(
        s.restart_count
        for p in pods
        if p.status.phase in ("Pending", "Running")
        for s in (*p.status.init_container_statuses, *p.status.container_statuses)
    )
    limit = _backoff_limit(job)
    return restarts > 0 if limit == 0 else restarts >= limit


def _backoff_limit(job: Any) -> int:
    return int(job.spec.backoff_limit) if job.spec.HasField("backoff_limit") else 6


def _completions(job: Any) -> int | None:
    return int(job.spec.completions) if job.spec.HasField("completions") else None


def _parallelism(job: Any) -> int:
    return int(job.spec.parallelism) if job.spec.HasField("parallelism") else 1


def _suspended(job: Any) -> bool:
    return job.spec.HasField("suspend") and job.spec.suspend


def _indexed(job: Any) -> bool:
    return job.spec.completion_mode == "Indexed" and _completions(job) is not None


def _set_condition(
    status: Any, type_: str, value: str, reason: str, message: str, now: datetime
) -> bool:
    """Kubernetes' ensureJobConditionStatus: add or flip ``type_``; a False condition
    that never existed is not added. Returns whether anything changed."""
    condition = _condition(status, type_)
    if condition is None:
        if value == "False":
            return False
        condition = status.conditions.add(type=type_)
    elif condition.status == value:
        return False
    condition.status = value
    condition.reason = reason
    condition.message = message
    condition.last_transition_time.FromDatetime(now)
    condition.last_probe_time.FromDatetime(now)
    return True


# ---------------------------------------------------------------------------------------
# the controller


@dataclass
class _Pass:
    """What one reconcile found and decided, before tracking writes it down."""

    job: Any
    status: Any
    pods: list[Any]
    now: datetime
    finish: _Finish | None = None
    terminating: int = 0
    succeeded_indexes: set[int] | None = None
    fresh_with_finalizer: set[str] | None = None
    """uids that a consistent list showed still carrying the tracking finalizer (only
    listed when some pod looked newly finished)."""


class JobController(Controller):
    """The ``job`` loop (see the package doc); :attr:`expectations` for tests."""

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = _utc_now,
        pod_failure_backoff: PodFailureBackoff = DEFAULT_POD_FAILURE_BACKOFF,
    ) -> None:
        self.api = ctx.api
        self.clock = clock
        self.backoff = pod_failure_backoff
        self.job_informer: Informer = ctx.informers.informer(KIND)
        self.pod_informer: Informer = ctx.informers.informer("Pod")
        self.expectations = podcontrol.Expectations()
        super().__init__(
            "job",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.job_informer,
        )
        self.job_informer.add_handler(
            Handlers(on_delete=lambda job: self.expectations.forget(object_key(job)))
        )
        self.pod_informer.add_handler(
            Handlers(
                on_add=self._pod_added,
                on_update=self._pod_updated,
                on_delete=self._pod_deleted,
            )
        )
        self.depends_on([self.pod_informer])
        self._written: dict[str, int] = {}

    # ------------------------------------------------------------------ handlers

    def _owner_key(self, pod: Any) -> str | None:
        ref = podcontrol.controller_of(pod)
        if ref is None or ref.kind != KIND:
            return None
        return f"{pod.metadata.namespace}/{ref.name}"

    def _owner_matches(self, key: str, pod: Any) -> bool:
        job = self.job_informer.cache.get(key)
        return job is not None and podcontrol.is_owned_by(pod, job)

    def _pod_added(self, pod: Any) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        if self._owner_matches(key, pod):
            if pod.metadata.HasField("deletion_timestamp"):
                self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
            else:
                self.expectations.creation_observed(key)
        self.enqueue(key)

    def _pod_updated(self, old: Any, new: Any) -> None:
        key = self._owner_key(new)
        if key is None:
            return
        if new.metadata.HasField("deletion_timestamp") and self._owner_matches(key, new):
            self.expectations.deletion_observed(key, podcontrol.pod_key(new))
        self.enqueue(key)

    def _pod_deleted(self, pod: Any) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
        self.enqueue(key)

    def _event(self, job: Any, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(job, type_, reason, message)

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        job = self.job_informer.cache.get(key)
        in_namespace = self.pod_informer.cache.list(namespace)
        # Pods of a Job that is gone (or of an earlier Job by the same name) are let go.
        strays = [
            p
            for p in in_namespace
            if _has_finalizer(p)
            and (ref := podcontrol.controller_of(p)) is not None
            and ref.kind == KIND
            and ref.name == name
            and (job is None or ref.uid != job.metadata.uid)
        ]
        if strays:
            await self._release(await self._confirm_strays(namespace, name, strays))
        if job is None:
            self.expectations.forget(key)
            self._written.pop(key, None)
            return None
        if int(job.metadata.resource_version or 0) < self._written.get(key, 0):
            return None  # our newer status is on its way to the cache, and re-enqueues
        pods = [p for p in in_namespace if podcontrol.is_owned_by(p, job)]
        now = self.clock()
        if is_finished(job):
            await self._release([p for p in pods if _has_finalizer(p)])
            return await self._expire(key, job, now)
        return await self._sync_job(key, job, pods, now)

    async def _confirm_strays(self, namespace: str, name: str, strays: list[Any]) -> list[Any]:
        """The ``strays`` whose Job really is gone or finished, by a read from the API
        server: a Job cache that lags the pod cache must not make live pods untracked."""
        try:
            live: Any = await self.api.get(KIND, name, namespace=namespace)
        except NotFound:
            return strays
        except ApiError as exc:
            raise TransientError(f"could not read job {namespace}/{name}: {exc}") from exc
        if is_finished(live):
            return strays
        return [p for p in strays if not podcontrol.is_owned_by(p, live)]

    async def _sync_job(self, key: str, job: Any, pods: list[Any], now: datetime) -> float | None:
        status = type(job.status)()
        status.CopyFrom(job.status)
        p = _Pass(job=job, status=status, pods=pods, now=now)
        satisfied = self.expectations.satisfied(key)
        active = [q for q in pods if podcontrol.is_pod_active(q)]
        p.terminating = sum(1 for q in pods if _is_terminating(q))
        uncounted = status.uncounted_terminated_pods
        seen = set(uncounted.succeeded) | set(uncounted.failed)
        candidates = [
            q
            for q in pods
            if _has_finalizer(q)
            and q.metadata.uid not in seen
            and (q.status.phase == "Succeeded" or _is_failed(q))
        ]
        if candidates:
            p.fresh_with_finalizer = await self._fresh_finalized_uids(job)
            candidates = [q for q in candidates if q.metadata.uid in p.fresh_with_finalizer]
        new_succeeded = [q for q in candidates if q.status.phase == "Succeeded"]
        new_failed = [q for q in candidates if q.status.phase != "Succeeded"]
        succeeded = status.succeeded + len(new_succeeded) + len(uncounted.succeeded)
        failed = status.failed + len(new_failed) + len(uncounted.failed)
        completions = _completions(job)
        if _indexed(job):
            assert completions is not None
            p.succeeded_indexes = parse_indexes(status.completed_indexes, completions) | {
                i
                for q in pods
                if q.status.phase == "Succeeded"
                and (i := completion_index(q, completions)) is not None
            }
            succeeded = len(p.succeeded_indexes)
        if not status.HasField("start_time") and not _suspended(job):
            status.start_time.FromDatetime(now)

        again: list[float] = []
        target = _condition(status, "FailureTarget")
        if target is not None and target.status == "True":
            p.finish = _Finish(False, target.reason, target.message)
        elif _true(status, "SuccessCriteriaMet"):
            p.finish = _COMPLETE
        elif failed > _backoff_limit(job) or past_backoff_limit_on_failure(job, pods):
            p.finish = _BACKOFF
        elif job.spec.HasField("active_deadline_seconds") and not _suspended(job):
            left = self._deadline_left(job, status, now)
            if left <= 0:
                p.finish = _DEADLINE
            else:
                again.append(left)

        error: str | None = None
        ready = sum(1 for q in active if podcontrol.is_pod_ready(q))
        if p.finish is not None and not p.finish.success:
            deleted, error = await self._delete(job, active, keep_finalizer=True)
            if deleted < len(active) or not satisfied:
                p.finish = None
            ready -= sum(1 for q in active[:deleted] if podcontrol.is_pod_ready(q))
            p.terminating += deleted
            count = len(active) - deleted
        else:
            count = len(active)
            managed = False
            if satisfied and not job.metadata.HasField("deletion_timestamp"):
                count, wait, error = await self._manage(key, p, active, succeeded)
                managed = True
                if wait is not None:
                    again.append(wait)
                ready = min(ready, count)
            complete = (
                succeeded > 0 and count == 0
                if completions is None
                else succeeded >= completions and count == 0
            )
            if complete:
                p.finish = _COMPLETE
            elif managed:
                self._suspend_condition(job, status, now)
        status.active = count
        status.ready = max(0, ready)
        status.terminating = p.terminating
        await self._track(key, p)
        if error is not None:
            raise TransientError(error)
        return min(again) if again else None

    def _deadline_left(self, job: Any, status: Any, now: datetime) -> float:
        start = status.start_time.ToDatetime(tzinfo=UTC)
        deadline = start + timedelta(seconds=int(job.spec.active_deadline_seconds))
        return (deadline - now).total_seconds()

    def _suspend_condition(self, job: Any, status: Any, now: datetime) -> None:
        if _suspended(job):
            if _set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now):
                self._event(job, NORMAL, "Suspended", "Job suspended")
        elif _set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now):
            self._event(job, NORMAL, "Resumed", "Job resumed")
            # activeDeadlineSeconds counts time running, from the resumption.
            status.start_time.FromDatetime(now)

    async def _fresh_finalized_uids(self, job: Any) -> set[str]:
        """uids of the Job's pods that carry the tracking finalizer, by a consistent list."""
        selector = job.spec.selector
        try:
            text = selector_to_string(selector) if job.spec.HasField("selector") else ""
            listed = await self.api.list(
                "Pod", namespace=job.metadata.namespace, label_selector=text
            )
        except (ApiError, ValueError) as exc:
            raise TransientError(f"could not list the pods of {object_key(job)}: {exc}") from exc
        return {
            q.metadata.uid
            for q in listed.items
            if _has_finalizer(q) and podcontrol.is_owned_by(q, job)
        }

    # ------------------------------------------------------------------ pods

    async def _manage(
        self, key: str, p: _Pass, active: list[Any], succeeded: int
    ) -> tuple[int, float | None, str | None]:
        """Create or delete pods; ``(active count, seconds to wait, error)``."""
        job = p.job
        if _suspended(job):
            # Not failures: the finalizer goes first, so these pods are never counted.
            self.expectations.expect_deletions(key, [podcontrol.pod_key(q) for q in active])
            deleted, error = await self._delete(job, active, keep_finalizer=False)
            return len(active) - deleted, None, error
        completions = _completions(job)
        parallelism = _parallelism(job)
        if completions is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - succeeded, parallelism))
        surplus = self._surplus(p, active, want)
        if surplus:
            surplus = surplus[: podcontrol.BURST_REPLICAS]
            self.expectations.expect_deletions(key, [podcontrol.pod_key(q) for q in surplus])
            deleted, error = await self._delete(job, surplus, keep_finalizer=False)
            return len(active) - deleted, None, error
        missing = min(want - len(active), podcontrol.BURST_REPLICAS)
        if missing <= 0:
            return len(active), None, None
        failed = [
            q
            for q in p.pods
            if q.status.phase == "Failed" or (_is_terminating(q) and _has_finalizer(q))
        ]
        done = [q for q in p.pods if q.status.phase == "Succeeded"]
        wait = self.backoff.remaining(done, failed, p.now)
        if wait > 0:
            return len(active), wait, None
        indexes: list[int] = []
        if p.succeeded_indexes is not None and completions is not None:
            taken = {i for q in active if (i := completion_index(q, completions)) is not None}
            indexes = first_pending(completions, p.succeeded_indexes, taken, missing)
            missing = len(indexes)
            if missing == 0:
                return len(active), None, None
        self.expectations.expect_creations(key, missing)
        result = await podcontrol.create_pods(
            self.api,
            job,
            job.spec.template,
            missing,
            recorder=self.recorder,
            on_failed=lambda: self.expectations.creation_observed(key),
            customize=lambda i, pod: _prepare_pod(job, pod, indexes[i] if indexes else None),
        )
        error = str(result.errors[0]) if result.errors else None
        return len(active) + len(result.created), None, error

    def _surplus(self, p: _Pass, active: list[Any], want: int) -> list[Any]:
        """Active pods to delete: for an Indexed Job those with a bad, finished or
        doubled index first; then the least advanced beyond ``want``."""
        chosen: list[Any] = []
        completions = _completions(p.job)
        if p.succeeded_indexes is not None and completions is not None:
            holders: set[int] = set()
            for q in sorted(active, key=_created):
                index = completion_index(q, completions)
                if index is None or index in p.succeeded_indexes or index in holders:
                    chosen.append(q)
                else:
                    holders.add(index)
        rest = [q for q in active if q not in chosen]
        extra = len(active) - len(chosen) - want
        if extra > 0:
            chosen.extend(podcontrol.deletion_order(rest, now=p.now)[:extra])
        return chosen

    async def _delete(
        self, job: Any, pods: Sequence[Any], *, keep_finalizer: bool
    ) -> tuple[int, str | None]:
        """Delete ``pods``; with ``keep_finalizer`` they stay (terminating) until tracking
        counts them as failed. Returns how many went, and the first error."""
        deleted = 0
        errors: list[str] = []
        limit = trio.CapacityLimiter(CONCURRENCY)

        async def one(pod: Any) -> None:
            nonlocal deleted
            async with limit:
                try:
                    if not keep_finalizer and not await self._remove_finalizer(pod):
                        raise TransientError(f"could not release pod {pod.metadata.name}")
                    await self.api.delete(
                        "Pod",
                        pod.metadata.name,
                        namespace=pod.metadata.namespace,
                        uid=pod.metadata.uid,
                    )
                except (NotFound, Conflict):
                    pass
                except (ApiError, TransientError) as exc:
                    self.expectations.deletion_observed(object_key(job), podcontrol.pod_key(pod))
                    errors.append(str(exc))
                    self._event(job, WARNING, "FailedDelete", f"Error deleting: {exc}")
                    return
                deleted += 1
                self._event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

        async with trio.open_nursery() as nursery:
            for pod in pods:
                nursery.start_soon(one, pod)
        return deleted, errors[0] if errors else None

    async def _remove_finalizer(self, pod: Any) -> bool:
        """Remove the tracking finalizer (a merge patch conditional on resourceVersion,
        re-read on conflict); True when the pod no longer has it or is gone."""
        current = pod
        for _ in range(3):
            keep = [f for f in current.metadata.finalizers if f != TRACKING_FINALIZER]
            if len(keep) == len(current.metadata.finalizers):
                return True
            patch = {
                "metadata": {
                    "finalizers": keep,
                    "resourceVersion": current.metadata.resource_version,
                }
            }
            try:
                await self.api.patch_merge(
                    "Pod", pod.metadata.name, patch, namespace=pod.metadata.namespace
                )
                return True
            except NotFound:
                return True
            except Conflict:
                try:
                    current = await self.api.get(
                        "Pod", pod.metadata.name, namespace=pod.metadata.namespace
                    )
                except NotFound:
                    return True
                if current.metadata.uid != pod.metadata.uid:
                    return True
            except ApiError as exc:
                logger.info(
                    "pod %s: removing the tracking finalizer failed: %s", pod.metadata.name, exc
                )
                return False
        return False

    async def _release(self, pods: Sequence[Any]) -> set[str]:
        """Remove the tracking finalizer from ``pods``; the uids done."""
        done: set[str] = set()
        limit = trio.CapacityLimiter(CONCURRENCY)

        async def one(pod: Any) -> None:
            async with limit:
                if await self._remove_finalizer(pod):
                    done.add(pod.metadata.uid)

        async with trio.open_nursery() as nursery:
            for pod in pods:
                nursery.start_soon(one, pod)
        return done

    # ------------------------------------------------------------------ tracking

    async def _track(self, key: str, p: _Pass) -> None:
        """Step 4 of the module doc: uids, finalizers, counters, final condition."""
        job, status = p.job, p.status
        uncounted = status.uncounted_terminated_pods
        completions = _completions(job)
        with_finalizer = {q.metadata.uid for q in p.pods if _has_finalizer(q)}
        _count_released(status, with_finalizer)
        seen_succeeded = set(uncounted.succeeded)
        seen_failed = set(uncounted.failed)
        releasing: list[Any] = []
        new_indexes: set[int] = set()
        ending = job.metadata.HasField("deletion_timestamp") or p.finish is not None
        finishing = [
            pod
            for pod in p.pods
            if _has_finalizer(pod)
            and (ending or pod.status.phase == "Succeeded" or _is_failed(pod))
        ]
        fresh = p.fresh_with_finalizer
        if fresh is None and any(
            q.metadata.uid not in seen_succeeded and q.metadata.uid not in seen_failed
            for q in finishing
        ):
            fresh = await self._fresh_finalized_uids(job)
        added = 0
        for pod in finishing:
            uid = pod.metadata.uid
            failed = _is_failed(pod)
            known = uid in seen_succeeded or uid in seen_failed
            if not known and (fresh is None or uid not in fresh):
                continue  # already through tracking: the cache is behind
            releasing.append(pod)
            if pod.status.phase == "Succeeded" and uid not in seen_failed:
                if p.succeeded_indexes is not None:
                    index = completion_index(pod, completions)
                    if index is not None:
                        new_indexes.add(index)
                elif uid not in seen_succeeded:
                    uncounted.succeeded.append(uid)
                    added += 1
            elif failed or (p.finish is not None and not p.finish.success):
                # A Job that ends as failed counts its unfinished pods as failed.
                if uid not in seen_failed and uid not in seen_succeeded:
                    if (
                        p.succeeded_indexes is None
                        or completion_index(pod, completions) is not None
                    ):
                        uncounted.failed.append(uid)
                        added += 1
            if added >= MAX_UNCOUNTED:
                break
        if p.succeeded_indexes is not None:
            everything = p.succeeded_indexes | new_indexes
            status.completed_indexes = format_indexes(everything)
            status.succeeded = len(everything)
        if p.finish is not None and not _true(status, p.finish.interim):
            _set_condition(
                status, p.finish.interim, "True", p.finish.reason, p.finish.message, p.now
            )
        job = await self._write(key, job, status)
        if job is None:
            return
        released = await self._release(releasing)
        with_finalizer -= released
        _count_released(status, with_finalizer)
        if (
            p.finish is not None
            and added < MAX_UNCOUNTED
            and not uncounted.succeeded
            and not uncounted.failed
            and p.terminating == 0
            and _set_condition(
                status, p.finish.final, "True", p.finish.reason, p.finish.message, p.now
            )
        ):
            if p.finish.success:
                status.completion_time.FromDatetime(p.now)
                if completions is not None and status.succeeded > completions:
                    self._event(
                        job,
                        WARNING,
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                    )
                self._event(job, NORMAL, "Completed", "Job completed")
            else:
                self._event(job, WARNING, p.finish.reason, p.finish.message)
        await self._write(key, job, status)
        if len(released) < len(releasing):
            raise TransientError(
                f"{len(releasing) - len(released)} pod(s) of {key} kept their tracking finalizer"
            )

    async def _write(self, key: str, job: Any, status: Any) -> Any | None:
        """Write ``status`` if it differs, conditional on ``job``'s resourceVersion; the
        Job as stored afterwards (None if it is gone)."""
        if status == job.status:
            return job
        updated = type(job)()
        updated.CopyFrom(job)
        updated.status.CopyFrom(status)
        try:
            written = await self.api.update_status(updated)
        except NotFound:
            return None
        except Conflict as exc:
            raise TransientError(f"status of {key}: {exc}") from exc
        self._written[key] = int(written.metadata.resource_version or 0)
        return written

    # ------------------------------------------------------------------ ttl

    async def _expire(self, key: str, job: Any, now: datetime) -> float | None:
        """ttlSecondsAfterFinished: delete the Job (background propagation) once expired;
        otherwise the seconds left."""
        if not job.spec.HasField("ttl_seconds_after_finished"):
            return None
        finished = _condition(job.status, "Complete")
        if finished is None or finished.status != "True":
            finished = _condition(job.status, "Failed")
        if finished is None or not finished.HasField("last_transition_time"):
            return None
        expire = finished.last_transition_time.ToDatetime(tzinfo=UTC) + timedelta(
            seconds=int(job.spec.ttl_seconds_after_finished)
        )
        left = (expire - now).total_seconds()
        if left > 0:
            return left
        try:
            await self.api.delete(
                KIND,
                job.metadata.name,
                namespace=job.metadata.namespace,
                uid=job.metadata.uid,
                propagation_policy="Background",
            )
        except (NotFound, Conflict):
            return None
        except ApiError as exc:
            raise TransientError(f"could not delete expired job {key}: {exc}") from exc
        logger.info(
            "job=%s: deleted %ss after it finished", key, job.spec.ttl_seconds_after_finished
        )
        return None


def _count_released(status: Any, with_finalizer: set[str]) -> None:
    """Move uids whose pods no longer carry the finalizer into the counters."""
    uncounted = status.uncounted_terminated_pods
    for field, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        uids = list(getattr(uncounted, field))
        keep = [u for u in uids if u in with_finalizer]
        if len(keep) != len(uids):
            setattr(status, counter, getattr(status, counter) + len(uids) - len(keep))
            del getattr(uncounted, field)[:]
            getattr(uncounted, field).extend(keep)


def _created(pod: Any) -> tuple[float, str]:
    stamp = pod.metadata.creation_timestamp
    return (stamp.seconds + stamp.nanos / 1e9, pod.metadata.name)


def _prepare_pod(job: Any, pod: Any, index: int | None) -> None:
    """What a Job adds to a pod made from its template: the tracking finalizer and, for
    an Indexed Job, the index (annotation, label, $JOB_COMPLETION_INDEX, hostname)."""
    if TRACKING_FINALIZER not in pod.metadata.finalizers:
        pod.metadata.finalizers.append(TRACKING_FINALIZER)
    if index is None:
        return
    pod.metadata.generate_name = f"{job.metadata.name}-{index}-"
    pod.metadata.annotations[COMPLETION_INDEX_KEY] = str(index)
    pod.metadata.labels[COMPLETION_INDEX_KEY] = str(index)
    pod.spec.hostname = f"{job.metadata.name}-{index}"
    for container in (*pod.spec.init_containers, *pod.spec.containers):
        if not any(e.name == JOB_COMPLETION_INDEX_ENV for e in container.env):
            container.env.add(name=JOB_COMPLETION_INDEX_ENV, value=str(index))


def new_controller(
    ctx: ControllerContext,
    *,
    clock: Clock = _utc_now,
    pod_failure_backoff: PodFailureBackoff = DEFAULT_POD_FAILURE_BACKOFF,
) -> Controller:
    """The Job controller on ``ctx``'s shared informers."""
    return JobController(ctx, clock=clock, pod_failure_backoff=pod_failure_backoff)
