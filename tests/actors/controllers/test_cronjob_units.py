"""CronJob schedule arithmetic (pure): which schedule time to act on, and when to look again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.controllers.cron import parse_schedule
from actors.controllers.cronjob import (
    SCHEDULED_TIMESTAMP_ANNOTATION,
    InvalidSchedule,
    Missed,
    job_from_template,
    job_name,
    most_recent_schedule,
    next_schedule_delay,
    rfc3339,
)
from tests.actors.controllers.conftest import make

EVERY_MINUTE = parse_schedule("* * * * *", time_zone="UTC")
T0 = datetime(2026, 5, 4, 10, 0, 30, tzinfo=UTC)  # a Monday


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_nothing_due_before_the_first_time() -> None:
    check = most_recent_schedule(EVERY_MINUTE, earliest=T0, now=at(0.4))
    assert (check.most_recent, check.missed) == (None, Missed.NONE)


def test_one_time_due() -> None:
    check = most_recent_schedule(EVERY_MINUTE, earliest=T0, now=at(0.6))
    assert check.most_recent == datetime(2026, 5, 4, 10, 1, tzinfo=UTC)
    assert check.missed is Missed.NONE


def test_several_missed_start_only_the_latest() -> None:
    check = most_recent_schedule(EVERY_MINUTE, earliest=T0, now=at(5))
    assert check.most_recent == datetime(2026, 5, 4, 10, 5, tzinfo=UTC)
    assert check.missed is Missed.FEW


def test_more_than_a_hundred_missed_is_many() -> None:
    check = most_recent_schedule(EVERY_MINUTE, earliest=T0, now=at(99.6))
    assert check.missed is Missed.FEW
    check = most_recent_schedule(EVERY_MINUTE, earliest=T0, now=at(200))
    assert check.missed is Missed.MANY
    assert check.most_recent == datetime(2026, 5, 4, 13, 20, tzinfo=UTC)


def test_a_decade_behind_costs_little_and_still_finds_the_latest() -> None:
    hourly = parse_schedule("@hourly", time_zone="UTC")
    now = datetime(2036, 5, 4, 10, 30, tzinfo=UTC)
    check = most_recent_schedule(hourly, earliest=T0, now=now)
    assert check.most_recent == datetime(2036, 5, 4, 10, 0, tzinfo=UTC)
    assert check.missed is Missed.MANY


def test_starting_deadline_moves_the_earliest_time() -> None:
    long_ago = T0 - timedelta(days=30)
    check = most_recent_schedule(
        EVERY_MINUTE, earliest=long_ago, now=at(5), starting_deadline_seconds=150
    )
    assert check.earliest == at(5) - timedelta(seconds=150)
    assert check.most_recent == datetime(2026, 5, 4, 10, 5, tzinfo=UTC)
    assert check.missed is Missed.FEW  # not MANY: older times are out of the window


def test_irregular_schedule_over_a_weekend() -> None:
    # 06:30, 10:30, 14:30 on weekdays; Friday 14:30 is the latest by Monday 06:00.
    schedule = parse_schedule("30 6-16/4 * * 1-5", time_zone="UTC")
    friday = datetime(2026, 5, 8, 9, 0, tzinfo=UTC)
    monday = datetime(2026, 5, 11, 6, 0, tzinfo=UTC)
    check = most_recent_schedule(schedule, earliest=friday, now=monday)
    assert check.most_recent == datetime(2026, 5, 8, 14, 30, tzinfo=UTC)


def test_every_schedule_counts_from_the_earliest_time() -> None:
    every = parse_schedule("@every 90s", time_zone="UTC")
    check = most_recent_schedule(every, earliest=T0, now=T0 + timedelta(seconds=200))
    assert check.most_recent == T0 + timedelta(seconds=180)


def test_never_firing_schedule_is_invalid() -> None:
    never = parse_schedule("0 0 31 2 *", time_zone="UTC")
    with pytest.raises(InvalidSchedule, match="no time within the next 5 years"):
        most_recent_schedule(never, earliest=T0, now=at(10))
    assert next_schedule_delay(never, earliest=T0, now=at(10)) is None


def test_next_delay_is_until_just_after_the_next_time() -> None:
    assert next_schedule_delay(EVERY_MINUTE, earliest=T0, now=at(0)) == pytest.approx(30.1)
    # After acting on 10:01 (earliest = last schedule time), next is 10:02.
    last = datetime(2026, 5, 4, 10, 1, tzinfo=UTC)
    now = last + timedelta(seconds=5)
    assert next_schedule_delay(EVERY_MINUTE, earliest=last, now=now) == pytest.approx(55.1)
    # With times missed, the next one counts from now.
    assert next_schedule_delay(EVERY_MINUTE, earliest=T0, now=at(5)) == pytest.approx(30.1)


def test_job_name_and_template() -> None:
    scheduled = datetime(2026, 5, 4, 10, 1, tzinfo=UTC)
    minutes = (scheduled - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(minutes=1)
    assert job_name("backup", scheduled) == f"backup-{minutes}" == "backup-29631481"
    cj = make("CronJob", "backup", "ops")
    cj.metadata.uid = "cj-uid"
    cj.spec.job_template.metadata.labels["team"] = "db"
    cj.spec.job_template.metadata.annotations["note"] = "nightly"
    cj.spec.job_template.spec.backoff_limit = 2
    job = job_from_template(cj, scheduled)
    assert (job.metadata.name, job.metadata.namespace) == ("backup-29631481", "ops")
    assert dict(job.metadata.labels) == {"team": "db"}
    assert job.metadata.annotations["note"] == "nightly"
    assert job.metadata.annotations[SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-05-04T10:01:00Z"
    assert job.spec.backoff_limit == 2
    ref = job.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("CronJob", "backup", "cj-uid", True)


def test_rfc3339_keeps_the_zone_offset() -> None:
    paris = parse_schedule("0 13 * * *", time_zone="Europe/Paris")
    t = paris.next_after(T0)
    assert t is not None
    assert rfc3339(t) == "2026-05-04T13:00:00+02:00"
    assert rfc3339(T0) == "2026-05-04T10:00:30Z"
