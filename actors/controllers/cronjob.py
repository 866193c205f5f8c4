"""The CronJob controller: a Job at each time the schedule names.

For each CronJob key, :meth:`CronJobController.reconcile_key` does what Kubernetes'
``cronjob_controllerv2`` does, level-triggered from the CronJob and Job caches:

1. **Bookkeeping.** Jobs it controls that finished leave ``status.active``
   (``SawCompletedJob``); the newest ``completionTime`` of a succeeded one becomes
   ``lastSuccessfulTime``; an active reference whose Job is gone (asked of the API server,
   not the cache) is dropped (``MissingJob``); a running Job it controls that is not in the
   list is reported (``UnexpectedJob``).
2. **The schedule.** Nothing more happens while the CronJob is being deleted or is
   suspended, or when its zone or schedule is invalid (a Warning Event:
   ``UnknownTimeZone``, ``UnparseableSchedule``, ``InvalidSchedule``; the key waits for
   the CronJob to change). Otherwise :func:`most_recent_schedule` finds the latest
   schedule time not yet acted on, counting from ``lastScheduleTime`` (or the creation
   time) -- but never from before ``now - startingDeadlineSeconds``. More than 100 missed
   times give a ``TooManyMissedTimes`` Warning; only the latest one is started anyway,
   and one older than ``startingDeadlineSeconds`` is skipped (``MissSchedule``).
3. **Concurrency.** ``Forbid`` waits while a Job is active (``JobAlreadyActive``; the
   missed time is started once the Job ends, if still within the deadline); ``Replace``
   deletes the active Jobs first (background propagation); ``Allow`` just starts.
4. **The Job** is named ``<cronjob>-<scheduled time in minutes since the epoch>`` --
   the name is the lock: after a crash between creating the Job and writing the status,
   the next pass meets ``AlreadyExists``, finds the Job is its own, and only records it.
   It carries the template's labels and annotations, the annotation
   ``batch.kubernetes.io/cronjob-scheduled-timestamp`` and a controller reference.
5. **History.** Finished Jobs beyond ``successfulJobsHistoryLimit`` (3) and
   ``failedJobsHistoryLimit`` (1) are deleted, oldest start first.
6. **Status** (``active``, ``lastScheduleTime``, ``lastSuccessfulTime``) is written with
   the resourceVersion it was computed from, and only when it changed.

The reconcile returns the seconds until the next schedule time (plus 0.1 s), so the key
comes back on time without any event. Time comes from an injectable ``clock`` (a
function returning an aware ``datetime``), which is how the tests drive schedules with a
fake "now". Schedules without ``timeZone`` use the controller's zone, as Kubernetes does
(``default_zone`` overrides it).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from actors.client import AlreadyExists, ApiError, Conflict, NotFound
from actors.controller import (
    NORMAL,
    WARNING,
    Controller,
    Handlers,
    Informer,
    TransientError,
)
from actors.controller.cache import object_key
from proto.k8s import kinds

from . import podcontrol
from .context import ControllerContext
from .cron import CronSyntaxError, Schedule, UnknownTimeZone, load_zone, parse_schedule

__all__ = [
    "CronJobController",
    "InvalidSchedule",
    "Missed",
    "ScheduleCheck",
    "SCHEDULED_TIMESTAMP_ANNOTATION",
    "job_from_template",
    "job_name",
    "most_recent_schedule",
    "new_controller",
    "next_schedule_delay",
    "rfc3339",
]

logger = logging.getLogger(__name__)

KIND = "CronJob"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100
NEXT_SCHEDULE_DELTA = 0.1
"""Seconds added to the wait for the next schedule time, so the pass lands after it."""

_JOB = kinds.by_kind("Job")
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------
# schedule arithmetic (pure)


class InvalidSchedule(ValueError):
    """A schedule that parses but cannot be acted on (it never fires, or fires more than
    once a second)."""


class Missed(enum.Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"


@dataclass(frozen=True)
class ScheduleCheck:
    """What :func:`most_recent_schedule` found."""

    earliest: datetime
    """The time from which schedule times were counted."""
    most_recent: datetime | None
    """The latest schedule time after ``earliest`` and not after now, if any."""
    missed: Missed


def _next(schedule: Schedule, t: datetime) -> datetime:
    nxt = schedule.next_after(t)
    if nxt is None:
        raise InvalidSchedule("the schedule names no time within the next 5 years")
    return nxt


def most_recent_schedule(
    schedule: Schedule,
    *,
    earliest: datetime,
    now: datetime,
    starting_deadline_seconds: int | None = None,
) -> ScheduleCheck:
    """The latest schedule time in (``earliest``, ``now``] -- Kubernetes'
    ``mostRecentScheduleTime``.

    ``earliest`` is the last schedule time acted on (or the CronJob's creation). With
    ``starting_deadline_seconds`` nothing before ``now`` minus the deadline counts. The
    number of times missed is estimated from the interval between the first two, as
    Kubernetes does, so that a clock decades off costs only a few steps: more than 100 is
    :attr:`Missed.MANY`. The latest time itself is exact, also for irregular schedules
    (where Kubernetes' estimate can miss it after a weekend gap).
    """
    if starting_deadline_seconds is not None:
        deadline = now - timedelta(seconds=starting_deadline_seconds)
        earliest = max(earliest, deadline)
    t1 = _next(schedule, earliest)
    if now < t1:
        return ScheduleCheck(earliest, None, Missed.NONE)
    t2 = _next(schedule, t1)
    if now < t2:
        return ScheduleCheck(earliest, t1, Missed.NONE)
    interval = round((t2 - t1).total_seconds())
    if interval < 1:
        raise InvalidSchedule("time difference between two schedules is less than 1 second")
    elapsed = int((now - t1).total_seconds())
    count = elapsed // interval + 1
    most_recent: datetime | None = None
    back = 2
    while most_recent is None:
        # Start a little before the estimated latest time; if the schedule is irregular
        # (a weekend gap) and nothing turns up, start further back -- at worst from
        # ``earliest``, whose next time is t1 <= now.
        start = max(earliest, t1 + timedelta(seconds=(count - back) * interval))
        t = _next(schedule, start)
        while t <= now:
            most_recent = t
            t = _next(schedule, t)
        back *= 2
    missed = Missed.MANY if count > TOO_MANY_MISSED else Missed.FEW
    return ScheduleCheck(earliest, most_recent, missed)


def next_schedule_delay(schedule: Schedule, *, earliest: datetime, now: datetime) -> float | None:
    """Seconds from ``now`` until just after the next schedule time still to act on
    (Kubernetes' ``nextScheduleTimeDuration``); None if the schedule never fires."""
    try:
        check = most_recent_schedule(schedule, earliest=earliest, now=now)
        base = check.most_recent
        if base is None:
            base = check.earliest if check.missed is Missed.NONE else now
    except InvalidSchedule:
        base = now
    nxt = schedule.next_after(base)
    if nxt is None:
        return None
    return max(0.0, (nxt - now).total_seconds()) + NEXT_SCHEDULE_DELTA


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    """``<cronjob>-<minutes since the epoch>``: one name per schedule time."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Any, scheduled: datetime) -> Any:
    """The Job a CronJob starts for the schedule time ``scheduled`` (aware, in the
    CronJob's zone: the annotation shows that zone's offset, as Kubernetes writes it)."""
    job = _JOB.new()
    template = cj.spec.job_template
    job.metadata.name = job_name(cj.metadata.name, scheduled)
    job.metadata.namespace = cj.metadata.namespace
    job.metadata.labels.update(template.metadata.labels)
    job.metadata.annotations.update(template.metadata.annotations)
    job.metadata.annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = rfc3339(scheduled)
    job.metadata.owner_references.append(podcontrol.controller_ref(cj))
    job.spec.CopyFrom(template.spec)
    return job


def rfc3339(t: datetime) -> str:
    """``t`` as Go's RFC 3339 (``Z`` for UTC, else the offset), whole seconds."""
    text = t.replace(microsecond=0).isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


def job_finished(job: Any) -> str | None:
    """``"Complete"`` or ``"Failed"`` if that condition is True on ``job``, else None."""
    for condition in job.status.conditions:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _job_ref(job: Any) -> Any:
    ref = kinds.by_kind("CronJob").new().status.active.add()
    ref.kind = "Job"
    ref.api_version = _JOB.api_version
    ref.namespace = job.metadata.namespace
    ref.name = job.metadata.name
    ref.uid = job.metadata.uid
    ref.resource_version = str(job.metadata.resource_version)
    return ref


def _start_time_key(job: Any) -> tuple[int, float, str]:
    # Kubernetes' byJobStartTime: Jobs without a start time count as the newest.
    if job.status.HasField("start_time"):
        return (0, job.status.start_time.ToDatetime(tzinfo=UTC).timestamp(), job.metadata.name)
    return (1, 0.0, job.metadata.name)


# ---------------------------------------------------------------------------------------
# the controller


class CronJobController(Controller):
    """The ``cronjob`` loop (see the module doc)."""

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = _utc_now,
        default_zone: tzinfo | None = None,
    ) -> None:
        self.api = ctx.api
        self.clock = clock
        self.default_zone = default_zone
        self.cj_informer: Informer = ctx.informers.informer(KIND)
        self.job_informer: Informer = ctx.informers.informer("Job")
        super().__init__(
            "cronjob",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.cj_informer,
        )
        self.job_informer.add_handler(
            Handlers(
                on_add=self._job_changed,
                on_update=lambda old, new: self._job_changed(new),
                on_delete=self._job_changed,
            )
        )
        self.depends_on([self.job_informer])
        self._written: dict[str, int] = {}

    def _job_changed(self, job: Any) -> None:
        ref = podcontrol.controller_of(job)
        if ref is not None and ref.kind == KIND:
            self.enqueue(f"{job.metadata.namespace}/{ref.name}")

    def _event(self, cj: Any, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(cj, type_, reason, message)

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> float | None:
        cj = self.cj_informer.cache.get(key)
        if cj is None:
            self._written.pop(key, None)
            return None
        if int(cj.metadata.resource_version or 0) < self._written.get(key, 0):
            return None  # our own newer write is on its way to the cache; it re-enqueues
        now = self.clock()
        status = type(cj.status)()
        status.CopyFrom(cj.status)
        jobs = [
            j
            for j in self.job_informer.cache.list(cj.metadata.namespace)
            if podcontrol.is_owned_by(j, cj)
        ]
        await self._account(cj, status, jobs)
        try:
            delay = await self._schedule(cj, status, now)
        finally:
            await self._cleanup_history(cj, status, jobs)
            await self._write_status(key, cj, status)
        return delay

    async def _account(self, cj: Any, status: Any, jobs: list[Any]) -> None:
        """Step 1 of the module doc: reconcile ``status.active`` with the Jobs."""
        active_uids = {ref.uid for ref in status.active}
        children = set()
        for job in jobs:
            children.add(job.metadata.uid)
            finished = job_finished(job)
            if job.metadata.uid not in active_uids and finished is None:
                self._event(
                    cj,
                    WARNING,
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {job.metadata.name}",
                )
            elif job.metadata.uid in active_uids and finished is not None:
                _remove_active(status, job.metadata.uid)
                self._event(
                    cj,
                    NORMAL,
                    "SawCompletedJob",
                    f"Saw completed job: {job.metadata.name}, condition: {finished}",
                )
            if finished == "Complete" and job.status.HasField("completion_time"):
                done = job.status.completion_time
                if not status.HasField("last_successful_time") or (
                    done.ToDatetime() > status.last_successful_time.ToDatetime()
                ):
                    status.last_successful_time.CopyFrom(done)
        for ref in list(status.active):
            if ref.uid in children:
                continue
            try:
                found: Any = await self.api.get("Job", ref.name, namespace=ref.namespace)
            except NotFound:
                found = None
            except ApiError as exc:
                raise TransientError(f"could not look up active job {ref.name}: {exc}") from exc
            if found is None or found.metadata.uid != ref.uid:
                self._event(cj, NORMAL, "MissingJob", f"Active job went missing: {ref.name}")
                _remove_active(status, ref.uid)

    async def _schedule(self, cj: Any, status: Any, now: datetime) -> float | None:
        """Steps 2-4 of the module doc; returns the seconds until the next look."""
        if cj.metadata.HasField("deletion_timestamp"):
            return None
        spec = cj.spec
        if spec.HasField("time_zone"):
            try:
                load_zone(spec.time_zone)
            except UnknownTimeZone as exc:
                self._event(
                    cj, WARNING, "UnknownTimeZone", f"invalid timeZone: {spec.time_zone!r}: {exc}"
                )
                return None
        if spec.suspend:
            return None
        text = spec.schedule.strip()
        if text.startswith(("TZ=", "CRON_TZ=")):
            self._event(
                cj,
                WARNING,
                "UnsupportedSchedule",
                f"CRON_TZ or TZ used in schedule {spec.schedule!r} is not officially "
                f"supported; use the timeZone field",
            )
        try:
            schedule = parse_schedule(
                text,
                time_zone=spec.time_zone if spec.HasField("time_zone") else None,
                default_zone=self.default_zone,
            )
        except CronSyntaxError as exc:
            self._event(
                cj,
                WARNING,
                "UnparseableSchedule",
                f"unparseable schedule: {spec.schedule!r}: {exc}",
            )
            return None
        earliest = (
            status.last_schedule_time if status.HasField("last_schedule_time") else None
        ) or cj.metadata.creation_timestamp
        start = earliest.ToDatetime(tzinfo=UTC)
        deadline = (
            int(spec.starting_deadline_seconds)
            if spec.HasField("starting_deadline_seconds")
            else None
        )
        try:
            check = most_recent_schedule(
                schedule, earliest=start, now=now, starting_deadline_seconds=deadline
            )
        except InvalidSchedule as exc:
            self._event(cj, WARNING, "InvalidSchedule", f"invalid schedule: {spec.schedule}: {exc}")
            return None
        if check.missed is Missed.MANY:
            self._event(
                cj,
                WARNING,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )
        after = next_schedule_delay(schedule, earliest=start, now=now)
        scheduled = check.most_recent
        if scheduled is None:
            return after
        if deadline is not None and scheduled + timedelta(seconds=deadline) < now:
            self._event(
                cj,
                WARNING,
                "MissSchedule",
                f"Missed scheduled time to start a job: {scheduled.astimezone(UTC):%a, %d %b %Y %H:%M:%S %z}",
            )
            return after
        name = job_name(cj.metadata.name, scheduled)
        if any(ref.name == name for ref in status.active) or (
            status.HasField("last_schedule_time")
            and status.last_schedule_time.ToDatetime(tzinfo=UTC) == scheduled.astimezone(UTC)
        ):
            return after
        policy = spec.concurrency_policy or "Allow"
        if policy == "Forbid" and status.active:
            self._event(
                cj,
                NORMAL,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy "
                "is Forbid",
            )
            return after
        if policy == "Replace":
            for ref in list(status.active):
                await self._delete_job(cj, status, ref.name, ref.uid)
        created = await self._create_job(cj, status, scheduled)
        if created is not None:
            if job_finished(created) is None:
                # A Job found already there may have finished: an ``@every`` schedule
                # fires again within the minute that names it. Only running Jobs are active.
                status.active.append(_job_ref(created))
            status.last_schedule_time.FromDatetime(scheduled.astimezone(UTC))
        return after

    async def _create_job(self, cj: Any, status: Any, scheduled: datetime) -> Any | None:
        """The Job for ``scheduled``, created now or found already there (and ours, and not
        yet recorded); None when there is nothing to record."""
        job = job_from_template(cj, scheduled)
        try:
            created = await self.api.create(job)
        except AlreadyExists:
            try:
                existing: Any = await self.api.get(
                    "Job", job.metadata.name, namespace=job.metadata.namespace
                )
            except ApiError as exc:
                raise TransientError(f"could not read job {job.metadata.name}: {exc}") from exc
            if not podcontrol.is_owned_by(existing, cj):
                return None
            if any(ref.uid == existing.metadata.uid for ref in status.active):
                return None
            logger.info("cronjob=%s: job %s already exists", object_key(cj), job.metadata.name)
            return existing
        except ApiError as exc:
            self._event(cj, WARNING, "FailedCreate", f"Error creating job: {exc}")
            raise TransientError(f"could not create job {job.metadata.name}: {exc}") from exc
        self._event(cj, NORMAL, "SuccessfulCreate", f"Created job {created.metadata.name}")
        logger.info("cronjob=%s: created job %s", object_key(cj), created.metadata.name)
        return created

    async def _delete_job(self, cj: Any, status: Any, name: str, uid: str) -> None:
        try:
            await self.api.delete(
                "Job",
                name,
                namespace=cj.metadata.namespace,
                uid=uid,
                propagation_policy="Background",
            )
        except (NotFound, Conflict):
            pass  # already gone, or another Job by that name: not ours to delete
        except ApiError as exc:
            self._event(cj, WARNING, "FailedDelete", f"Deleted job: {exc}")
            raise TransientError(f"could not delete job {name}: {exc}") from exc
        else:
            self._event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {name}")
        _remove_active(status, uid)

    async def _cleanup_history(self, cj: Any, status: Any, jobs: list[Any]) -> None:
        """Step 5 of the module doc."""
        spec = cj.spec
        for outcome, field in (
            ("Complete", "successful_jobs_history_limit"),
            ("Failed", "failed_jobs_history_limit"),
        ):
            if not spec.HasField(field):
                continue
            limit = max(0, int(getattr(spec, field)))
            done = sorted((j for j in jobs if job_finished(j) == outcome), key=_start_time_key)
            for job in done[: max(0, len(done) - limit)]:
                await self._delete_job(cj, status, job.metadata.name, job.metadata.uid)

    async def _write_status(self, key: str, cj: Any, status: Any) -> None:
        if status == cj.status:
            return
        updated = type(cj)()
        updated.CopyFrom(cj)
        updated.status.CopyFrom(status)
        try:
            written = await self.api.update_status(updated)
        except NotFound:
            return
        except Conflict as exc:
            # The cache was behind; the pass runs again on the newer object.
            raise TransientError(f"status of {key}: {exc}") from exc
        self._written[key] = int(written.metadata.resource_version or 0)


def _remove_active(status: Any, uid: str) -> None:
    keep = [ref for ref in status.active if ref.uid != uid]
    if len(keep) != len(status.active):
        del status.active[:]
        status.active.extend(keep)


def new_controller(
    ctx: ControllerContext, *, clock: Clock = _utc_now, default_zone: tzinfo | None = None
) -> Controller:
    """The CronJob controller on ``ctx``'s shared informers."""
    return CronJobController(ctx, clock=clock, default_zone=default_zone)
