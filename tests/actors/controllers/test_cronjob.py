"""The CronJob controller against a real API server on a real raftstore member.

Time is a fake "now" handed to the controller: a test moves it past a schedule time and
enqueues the CronJob, instead of waiting for the minute to turn. The Job controller does
not run: a test marks a Job finished by writing its status, as the Job controller would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from actors.client import ApiClient, Invalid, NotFound
from actors.controller import Controller
from actors.controllers import cronjob
from actors.controllers.context import ControllerContext
from actors.controllers.podcontrol import controller_of
from tests.actors.controllers.conftest import Harness, events_for, make, wait_until


class FakeClock:
    """``now`` as the test sets it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def cron_job(name: str, ns: str, schedule: str = "* * * * *", **spec: Any) -> Any:
    cj = make("CronJob", name, ns)
    cj.spec.schedule = schedule
    cj.spec.time_zone = "UTC"
    for field, value in spec.items():
        setattr(cj.spec, field, value)
    template = cj.spec.job_template
    template.metadata.labels["app"] = name
    template.spec.template.spec.restart_policy = "OnFailure"
    template.spec.template.spec.containers.add(name="main", image="busybox")
    return cj


class Setup:
    def __init__(self, api: ApiClient, ns: str, harness: Harness) -> None:
        self.api = api
        self.ns = ns
        self.harness = harness
        self.clock = FakeClock(datetime.now(UTC))
        self.controller: Any = None

    async def start(self) -> None:
        def new(ctx: ControllerContext) -> Controller:
            return cronjob.new_controller(ctx, clock=self.clock)

        [self.controller] = await self.harness.start(new)

    async def create(self, cj: Any) -> Any:
        created = await self.api.create(cj)
        # The fake clock starts at the CronJob's creation.
        born = created.metadata.creation_timestamp.ToDatetime(tzinfo=UTC)
        self.clock.now = born
        return created

    def to_minute(self, minutes: int, second: int = 5) -> datetime:
        """Move now to ``second`` past the ``minutes``-th minute boundary after now;
        returns that boundary (a schedule time of ``* * * * *``)."""
        base = self.clock.now.replace(second=0, microsecond=0)
        boundary = base + timedelta(minutes=minutes)
        self.clock.now = boundary + timedelta(seconds=second)
        return boundary

    def kick(self, name: str) -> None:
        self.controller.enqueue(f"{self.ns}/{name}")

    async def jobs(self, owner: Any) -> list[Any]:
        listed = await self.api.list("Job", namespace=self.ns)
        mine = [j for j in listed.items if (r := controller_of(j)) and r.uid == owner.metadata.uid]
        return sorted(mine, key=lambda j: j.metadata.name)

    async def jobs_count(self, owner: Any, count: int) -> list[Any] | None:
        got = await self.jobs(owner)
        return got if len(got) == count else None

    async def get(self, name: str) -> Any:
        got: Any = await self.api.get("CronJob", name, namespace=self.ns)
        return got

    async def finish(self, job: Any, outcome: str = "Complete") -> None:
        fresh: Any = await self.api.get("Job", job.metadata.name, namespace=self.ns)
        condition = fresh.status.conditions.add(type=outcome, status="True")
        condition.last_transition_time.GetCurrentTime()
        fresh.status.start_time.GetCurrentTime()
        if outcome == "Complete":
            fresh.status.completion_time.GetCurrentTime()
        await self.api.update_status(fresh)

    async def event(self, name: str, reason: str) -> Any:
        found = [e for e in await events_for(self.api, self.ns, name) if e[1] == reason]
        return found[0] if found else None


def minutes(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(minutes=1)


async def test_creates_a_job_at_each_schedule_time(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("tick", ns))
    s.kick("tick")
    first = s.to_minute(1)
    s.kick("tick")
    [job] = await wait_until(lambda: s.jobs_count(cj, 1))
    assert job.metadata.name == f"tick-{minutes(first)}"
    assert job.metadata.labels["app"] == "tick"
    assert job.metadata.annotations[cronjob.SCHEDULED_TIMESTAMP_ANNOTATION] == (
        first.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    ref = controller_of(job)
    assert ref is not None and (ref.kind, ref.name) == ("CronJob", "tick")
    assert job.spec.template.spec.restart_policy == "OnFailure"

    async def recorded() -> Any:
        got = await s.get("tick")
        return got if got.status.active else None

    status = (await wait_until(recorded)).status
    assert [a.name for a in status.active] == [job.metadata.name]
    assert status.last_schedule_time.ToDatetime(tzinfo=UTC) == first
    # The next minute brings a second Job (Allow: the first may still run).
    second = s.to_minute(1)
    s.kick("tick")
    jobs = await wait_until(lambda: s.jobs_count(cj, 2))
    assert jobs[1].metadata.name == f"tick-{minutes(second)}"
    # The reconcile asks to come back just after the next schedule time.
    await wait_until(lambda: _cached_active(s, "tick", 2))
    delay = await s.controller.reconcile_key(f"{ns}/tick")
    assert delay == (second + timedelta(minutes=1) - s.clock.now).total_seconds() + 0.1
    assert await wait_until(lambda: s.event("tick", "SuccessfulCreate"))


async def test_forbid_waits_for_the_active_job(api: ApiClient, ns: str, harness: Harness) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("solo", ns, concurrency_policy="Forbid"))
    s.to_minute(1)
    s.kick("solo")
    [first] = await wait_until(lambda: s.jobs_count(cj, 1))
    await wait_until(lambda: _active(s, "solo", 1))
    later = s.to_minute(1)
    s.kick("solo")
    assert await wait_until(lambda: s.event("solo", "JobAlreadyActive"))
    assert len(await s.jobs(cj)) == 1
    # Once the first Job completes, the time it held back is started.
    await s.finish(first)
    jobs = await wait_until(lambda: s.jobs_count(cj, 2))
    assert jobs[1].metadata.name == f"solo-{minutes(later)}"
    got = await wait_until(lambda: _active_names(s, "solo", [jobs[1].metadata.name]))
    assert got.status.HasField("last_successful_time")
    assert await wait_until(lambda: s.event("solo", "SawCompletedJob"))


async def test_replace_deletes_the_running_job(api: ApiClient, ns: str, harness: Harness) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("fresh", ns, concurrency_policy="Replace"))
    s.to_minute(1)
    s.kick("fresh")
    [first] = await wait_until(lambda: s.jobs_count(cj, 1))
    await wait_until(lambda: _active(s, "fresh", 1))
    s.to_minute(1)
    s.kick("fresh")

    async def replaced() -> Any:
        jobs = await s.jobs(cj)
        names = [j.metadata.name for j in jobs]
        return jobs if len(jobs) == 1 and first.metadata.name not in names else None

    [second] = await wait_until(replaced)
    await wait_until(lambda: _active_names(s, "fresh", [second.metadata.name]))
    assert await wait_until(lambda: s.event("fresh", "SuccessfulDelete"))


async def test_history_limits_keep_the_newest_finished_jobs(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(
        cron_job("hist", ns, successful_jobs_history_limit=1, failed_jobs_history_limit=1)
    )
    made: list[str] = []
    for round_, outcome in enumerate(["Complete", "Complete", "Failed", "Failed"]):
        s.to_minute(1)
        s.kick("hist")
        jobs = await wait_until(lambda: _new_job(s, cj, made))
        made.append(jobs.metadata.name)
        await s.finish(jobs, outcome)
        del round_

    async def kept() -> list[str] | None:
        names = [j.metadata.name for j in await s.jobs(cj)]
        return names if names == sorted([made[1], made[3]]) else None

    assert await wait_until(kept)


async def test_suspend_starts_nothing(api: ApiClient, ns: str, harness: Harness) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("held", ns, suspend=True))
    s.to_minute(3)
    s.kick("held")
    await s.controller.reconcile_key(f"{ns}/held")
    assert await s.jobs(cj) == []
    got = await s.get("held")
    got.spec.suspend = False
    await api.update(got)
    [job] = await wait_until(lambda: s.jobs_count(cj, 1))
    assert job.metadata.name == f"held-{minutes(s.clock.now.replace(second=0))}"


async def test_starting_deadline_skips_late_times(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("strict", ns, starting_deadline_seconds=10))
    s.to_minute(2, second=30)  # the latest time is 30 s old: too late
    await wait_until(lambda: s.controller.cj_informer.cache.get(f"{ns}/strict"))
    # Only times within the deadline count: nothing is due, and the next look is due
    # just after the next minute.
    delay = await s.controller.reconcile_key(f"{ns}/strict")
    assert delay == 30.1
    assert await s.jobs(cj) == []
    on_time = s.to_minute(1, second=5)
    s.kick("strict")
    [job] = await wait_until(lambda: s.jobs_count(cj, 1))
    assert job.metadata.name == f"strict-{minutes(on_time)}"


async def test_too_many_missed_times_warns_and_starts_the_latest(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("late", ns))
    latest = s.to_minute(150)
    s.kick("late")
    [job] = await wait_until(lambda: s.jobs_count(cj, 1))
    assert job.metadata.name == f"late-{minutes(latest)}"
    warning = await wait_until(lambda: s.event("late", "TooManyMissedTimes"))
    assert warning[0] == "Warning"


async def test_a_job_deleted_behind_its_back_leaves_the_active_list(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("lost", ns))
    s.to_minute(1)
    s.kick("lost")
    [job] = await wait_until(lambda: s.jobs_count(cj, 1))
    await wait_until(lambda: _active(s, "lost", 1))
    await api.delete("Job", job.metadata.name, namespace=ns)
    await wait_until(lambda: _active(s, "lost", 0))
    # No replacement for the same time: it was already started once.
    assert await s.jobs(cj) == []


async def test_bad_schedule_and_zone_are_refused_at_create(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    """The API server validates with the controller's own parser, so a schedule or zone
    the controller could not run never gets stored (kubectl users see it at apply)."""
    s = Setup(api, ns, harness)
    await s.start()
    with pytest.raises(Invalid, match=r"spec.schedule: .*day-of-week"):
        await s.create(cron_job("weird", ns, schedule="0 0 * * 7"))
    with pytest.raises(Invalid, match=r"spec.timeZone: .*Mars/Olympus"):
        await s.create(cron_job("zoned", ns, time_zone="Mars/Olympus"))


async def test_a_second_time_in_the_same_minute_leaves_a_finished_job_alone(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    """``@every 10s`` fires twice in a minute; both times name the same Job (the minute).
    A finished one is not put back into ``active`` (nor "seen completed" again)."""
    s = Setup(api, ns, harness)
    await s.start()
    cj = await s.create(cron_job("often", ns, schedule="@every 10s"))
    born = s.clock.now.replace(microsecond=0)
    k = 1  # two schedule times, born + 10k s and 10 s later, inside one minute
    while (born + timedelta(seconds=10 * k)).second >= 45:
        k += 1
    first = born + timedelta(seconds=10 * k)
    s.clock.now = first + timedelta(seconds=0.5)
    s.kick("often")
    [job] = await wait_until(lambda: s.jobs_count(cj, 1))
    await wait_until(lambda: _active(s, "often", 1))
    await s.finish(job)
    done = await wait_until(lambda: _active(s, "often", 0))
    second = first + timedelta(seconds=10)
    s.clock.now = second + timedelta(seconds=0.5)
    async with api.watch(
        "CronJob", namespace=ns, resource_version=str(done.metadata.resource_version)
    ) as changes:
        s.kick("often")
        with trio.fail_after(15):
            async for change in changes:
                status = change.object.status
                assert not status.active, f"finished {job.metadata.name} revived: {status}"
                if status.last_schedule_time.ToDatetime(tzinfo=UTC) == second:
                    break
    assert [j.metadata.name for j in await s.jobs(cj)] == [job.metadata.name]


# ------------------------------------------------------------------------- helpers


async def _active(s: Setup, name: str, count: int) -> Any:
    try:
        got = await s.get(name)
    except NotFound:
        return None
    return got if len(got.status.active) == count else None


def _cached_active(s: Setup, name: str, count: int) -> bool:
    cached = s.controller.cj_informer.cache.get(f"{s.ns}/{name}")
    return cached is not None and len(cached.status.active) == count


async def _active_names(s: Setup, name: str, names: list[str]) -> Any:
    got = await s.get(name)
    return got if [a.name for a in got.status.active] == names else None


async def _new_job(s: Setup, cj: Any, made: list[str]) -> Any:
    fresh = [j for j in await s.jobs(cj) if j.metadata.name not in made]
    return fresh[0] if fresh else None
