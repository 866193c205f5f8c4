"""Cron schedule parsing and next-time computation (pure; zones from the IANA database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from actors.controllers.cron import (
    CronSchedule,
    CronSyntaxError,
    EverySchedule,
    UnknownTimeZone,
    parse_schedule,
)

NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cron(text: str, zone: str = "UTC") -> CronSchedule:
    parsed = parse_schedule(text, time_zone=zone)
    assert isinstance(parsed, CronSchedule)
    return parsed


def firings(text: str, start: datetime, count: int, zone: str = "UTC") -> list[datetime]:
    schedule = cron(text, zone)
    out: list[datetime] = []
    t = start
    for _ in range(count):
        nxt = schedule.next_after(t)
        assert nxt is not None
        out.append(nxt)
        t = nxt
    return out


# ------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "field", "values"),
    [
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5/20 * * * *", "minutes", {5, 25, 45}),  # N/step is N-max/step
        ("1,2,10-12 * * * *", "minutes", {1, 2, 10, 11, 12}),
        ("0 9-17/4 * * *", "hours", {9, 13, 17}),
        ("0 0 * jan-mar,DEC *", "months", {1, 2, 3, 12}),
        ("0 0 * * MON-fri", "days_of_week", {1, 2, 3, 4, 5}),
        ("0 0 ? * sun", "days_of_week", {0}),
        ("0 0 28-31 * *", "days_of_month", {28, 29, 30, 31}),
    ],
)
def test_fields_select_the_values_cron_would(text: str, field: str, values: set[int]) -> None:
    assert set(getattr(cron(text), field)) == values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_descriptors_mean_their_five_fields(text: str, expected: str) -> None:
    assert cron(text) == cron(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "expected exactly 5 fields, found 4"),
        ("60 * * * *", "minute field item '60': 60 is outside 0-59"),
        ("* 24 * * *", "hour field item '24': 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month field item '0': 0 is outside 1-31"),
        ("* * * 13 *", "month field item '13': 13 is outside 1-12"),
        ("* * * * 7", "day-of-week field item '7': 7 is outside 0-6"),
        ("* * * foo *", "month field item 'foo': 'foo' is not a number (allowed: 1-12 or JAN/"),
        ("5-1 * * * *", "range start 5 is beyond its end 1"),
        ("*/0 * * * *", "step must be a positive number, not 0"),
        ("*/x * * * *", "step 'x' is not a positive number"),
        ("1-2-3 * * * *", "too many hyphens"),
        ("*/2/3 * * * *", "too many slashes"),
        ("1,,2 * * * *", "empty list item"),
        ("@fortnightly", "unrecognized descriptor '@fortnightly'"),
        ("@every 5 minutes", "invalid duration '5 minutes' in @every"),
        ("", "empty schedule"),
    ],
)
def test_bad_schedules_name_the_field_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(CronSyntaxError) as info:
        parse_schedule(text, time_zone="UTC")
    assert message in str(info.value)


def test_unknown_zone_is_a_specific_error() -> None:
    with pytest.raises(UnknownTimeZone, match="unknown time zone 'Mars/Olympus'"):
        parse_schedule("* * * * *", time_zone="Mars/Olympus")
    with pytest.raises(UnknownTimeZone):
        parse_schedule("CRON_TZ=Nowhere/City 0 0 * * *")


def test_zone_comes_from_prefix_then_time_zone_then_default() -> None:
    assert cron("CRON_TZ=Europe/Paris 0 12 * * *", zone="UTC").zone == ZoneInfo("Europe/Paris")
    prefixed = parse_schedule("TZ=Asia/Tokyo 0 12 * * *")
    assert isinstance(prefixed, CronSchedule) and prefixed.zone == ZoneInfo("Asia/Tokyo")
    assert cron("0 12 * * *", zone="Europe/Paris").zone == ZoneInfo("Europe/Paris")
    defaulted = parse_schedule("0 12 * * *", default_zone=NEW_YORK)
    assert isinstance(defaulted, CronSchedule) and defaulted.zone == NEW_YORK


# ------------------------------------------------------------------------- next times


def test_next_is_strictly_after_and_on_whole_minutes() -> None:
    every_minute = cron("* * * * *")
    assert every_minute.next_after(utc(2026, 1, 1, 0, 0)) == utc(2026, 1, 1, 0, 1)
    assert every_minute.next_after(utc(2026, 1, 1, 0, 0, 59)) == utc(2026, 1, 1, 0, 1)
    quarter = cron("*/15 * * * *")
    assert quarter.next_after(utc(2026, 1, 1, 0, 14, 59)) == utc(2026, 1, 1, 0, 15)
    assert quarter.next_after(utc(2026, 1, 1, 23, 45)) == utc(2026, 1, 2, 0, 0)


def test_month_and_year_rollover() -> None:
    assert firings("0 0 1 * *", utc(2026, 11, 15), 3) == [
        utc(2026, 12, 1),
        utc(2027, 1, 1),
        utc(2027, 2, 1),
    ]
    assert firings("0 0 31 * *", utc(2026, 1, 31, 1), 2) == [utc(2026, 3, 31), utc(2026, 5, 31)]


def test_leap_day_and_never() -> None:
    assert cron("0 0 29 2 *").next_after(utc(2026, 1, 1)) == utc(2028, 2, 29)
    # February 31st never comes: no time within the five years searched.
    assert cron("59 23 31 2 *").next_after(utc(2026, 1, 1)) is None


def test_day_of_month_and_week_are_either_when_both_restricted() -> None:
    # 2026-03-13 is a Friday; the 13th of other months or any Friday both count.
    days = [t.date().isoformat() for t in firings("0 0 13 * FRI", utc(2026, 3, 1), 4)]
    assert days == ["2026-03-06", "2026-03-13", "2026-03-20", "2026-03-27"]
    # With one of them unrestricted (a star, or */1), a day must match both.
    stars = [t.date().isoformat() for t in firings("0 0 */1 * FRI", utc(2026, 3, 1), 2)]
    assert stars == ["2026-03-06", "2026-03-13"]
    # */2 is a restriction (odd days): odd days or Fridays.
    odd = [t.date().isoformat() for t in firings("0 0 */2 * FRI", utc(2026, 3, 1), 4)]
    assert odd == ["2026-03-03", "2026-03-05", "2026-03-06", "2026-03-07"]
    only = [t.date().isoformat() for t in firings("0 0 ? * FRI", utc(2026, 3, 1), 2)]
    assert only == ["2026-03-06", "2026-03-13"]
    thirteenth = [t.date().isoformat() for t in firings("0 0 13 * *", utc(2026, 3, 1), 2)]
    assert thirteenth == ["2026-03-13", "2026-04-13"]


def test_zone_shifts_the_instants() -> None:
    paris = firings("30 9 * * *", utc(2026, 1, 10), 1, zone="Europe/Paris")[0]
    assert paris.astimezone(UTC) == utc(2026, 1, 10, 8, 30)  # CET is UTC+1
    summer = firings("30 9 * * *", utc(2026, 7, 10), 1, zone="Europe/Paris")[0]
    assert summer.astimezone(UTC) == utc(2026, 7, 10, 7, 30)  # CEST is UTC+2


def test_spring_forward_skips_the_missing_time() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT in New York: 02:30 does not exist that day.
    got = firings("30 2 * * *", utc(2026, 3, 7, 12), 2, zone="America/New_York")
    assert [t.isoformat() for t in got] == [
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]
    # Times after the jump that day still fire, in the new offset.
    after = firings("30 3 * * *", utc(2026, 3, 7, 12), 1, zone="America/New_York")[0]
    assert after.isoformat() == "2026-03-08T03:30:00-04:00"


def test_fall_back_fires_a_repeated_time_twice() -> None:
    # 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice, and fires twice
    # (every instant whose wall clock matches, as Kubernetes' cron library does).
    got = firings("30 1 * * *", utc(2026, 10, 31, 12), 3, zone="America/New_York")
    assert [t.astimezone(UTC) for t in got] == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 30),
        utc(2026, 11, 2, 6, 30),
    ]
    # An hourly schedule runs 25 times on that day (00:00 .. 23:00 with 01:00 twice).
    day = firings("0 * * * *", utc(2026, 11, 1, 3, 59), 25, zone="America/New_York")
    assert len({t.astimezone(UTC) for t in day}) == 25
    assert day[-1].isoformat() == "2026-11-01T23:00:00-05:00"


def test_half_hour_dst_zone() -> None:
    # Lord Howe Island moves its clocks by 30 minutes (2026-04-05 02:00 -> 01:30).
    got = firings("45 1 * * *", utc(2026, 4, 4, 6), 2, zone="Australia/Lord_Howe")
    assert [t.astimezone(UTC) for t in got] == [
        utc(2026, 4, 4, 14, 45),  # 01:45 +11:00
        utc(2026, 4, 4, 15, 15),  # 01:45 +10:30, the repeated half hour
    ]


def test_every_adds_the_interval_to_the_whole_second() -> None:
    every = parse_schedule("@every 1h30m", time_zone="UTC")
    assert isinstance(every, EverySchedule)
    assert every.interval == timedelta(minutes=90)
    t = datetime(2026, 1, 1, 0, 0, 10, 500_000, tzinfo=UTC)
    assert every.next_after(t) == utc(2026, 1, 1, 1, 30, 10)
    tiny = parse_schedule("@every 10ms", time_zone="UTC")
    assert isinstance(tiny, EverySchedule) and tiny.interval == timedelta(seconds=1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone-aware"):
        cron("* * * * *").next_after(datetime(2026, 1, 1))


def test_matches_agrees_with_next() -> None:
    schedule = cron("*/7 3-5 * * 1-5", zone="Europe/Berlin")
    t = utc(2026, 3, 20)
    for _ in range(50):
        nxt = schedule.next_after(t)
        assert nxt is not None and schedule.matches(nxt)
        # Nothing in between matches: check every minute up to the firing.
        probe = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while probe < nxt and (nxt - t) < timedelta(days=4):
            assert not schedule.matches(probe)
            probe += timedelta(minutes=1)
        t = nxt


@pytest.mark.parametrize("text", ["*/20 * * * *", "30 1,2 * * *", "0 */3 * * *", "15 0-3 * * 0"])
@pytest.mark.parametrize("start", [utc(2026, 3, 7, 12), utc(2026, 10, 31, 12)])
def test_next_equals_a_minute_by_minute_scan_across_dst(text: str, start: datetime) -> None:
    schedule = cron(text, zone="America/New_York")
    end = start + timedelta(days=2)
    scanned = []
    probe = start + timedelta(minutes=1)
    while probe <= end:
        if schedule.matches(probe):
            scanned.append(probe)
        probe += timedelta(minutes=1)
    found = []
    t = start
    while True:
        nxt = schedule.next_after(t)
        assert nxt is not None
        if nxt > end:
            break
        found.append(nxt.astimezone(UTC))
        t = nxt
    assert found == scanned
