"""Cron schedules: parse the standard five fields and find the next time they name.

A CronJob's ``spec.schedule`` is read the way Kubernetes reads it (the robfig/cron
"standard" parser): ``minute hour day-of-month month day-of-week``, where each field is a
comma-separated list of ``*`` / ``?`` (any), ``N``, ``N-M`` and any of these with
``/step`` (``N/step`` means ``N-max/step``). Months and weekdays may be named (``JAN``,
``mon``, case-insensitive); weekdays run 0-6 from Sunday. The descriptors ``@yearly``
(``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``), ``@hourly`` and
``@every <duration>`` (Go syntax: ``1h30m``, ``45s``) are accepted too, as is a leading
``CRON_TZ=<zone>`` or ``TZ=<zone>``.

Day-of-month and day-of-week combine as in cron: when either field is unrestricted
(``*``/``?``, or a ``*/1``) a day must match both, which means the other; when both are
restricted a day matching either is enough (``0 0 13 * FRI``: every 13th *and* every
Friday).

Time zones and daylight saving time
    Times are whole minutes of the zone's wall clock (IANA zones through :mod:`zoneinfo`).
    A schedule fires at every *instant* whose wall-clock reading matches, which is what
    Kubernetes does: a time that does not exist because clocks jump forward (02:30 on the
    spring-forward night in New York) is skipped that day, and a time that occurs twice
    because clocks fall back (01:30 in November) fires twice.

How :meth:`CronSchedule.next_after` searches
    Calendar arithmetic on naive wall times finds the next matching wall time; the search
    then moves in *absolute* time by the same amount, which is exact as long as the zone's
    UTC offset stays the same. The offset is probed once a day along the jump; where it
    changes, the instant of the transition is found by bisection and the search resumes
    from there. So a firing costs one calendar search plus one cheap probe per day
    skipped, and no wall time is ever tested minute by minute.
    Like robfig/cron, the search gives up after five years (``59 23 31 2 *`` never
    fires): :meth:`~CronSchedule.next_after` returns None.

Bad input raises :class:`CronSyntaxError` naming the field, the bad part and what is
allowed; an unknown zone raises :class:`UnknownTimeZone`.
"""

from __future__ import annotations

import bisect
import os
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol

__all__ = [
    "CronSchedule",
    "CronSyntaxError",
    "EverySchedule",
    "Schedule",
    "UnknownTimeZone",
    "load_zone",
    "local_zone",
    "parse_schedule",
]

SEARCH_YEARS = 5
"""How far :meth:`CronSchedule.next_after` looks before deciding a schedule never fires."""

_MAX_STEP = timedelta(days=1)
"""How far apart the UTC offset is probed on a jump (see the module doc): zones do not
change their offset twice within a day."""


class CronSyntaxError(ValueError):
    """A schedule that cannot be parsed; the message names the field and the problem."""


class UnknownTimeZone(CronSyntaxError):
    """A time zone name that the zone database does not know."""


class Schedule(Protocol):
    """What a CronJob needs from a schedule: the first firing strictly after ``t``."""

    def next_after(self, t: datetime) -> datetime | None: ...


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_MONTH_NAMES = {
    n: i + 1
    for i, n in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DOW_NAMES = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}

_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 6, _DOW_NAMES),
)

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


# ---------------------------------------------------------------------------------------
# zones


def local_zone() -> tzinfo:
    """The process's time zone (``$TZ``, else ``/etc/localtime``, else UTC) -- what
    Kubernetes uses for a CronJob without ``timeZone``."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


def load_zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``"Europe/Paris"``); ``""`` and ``"UTC"`` are UTC,
    ``"Local"`` is :func:`local_zone`. :class:`UnknownTimeZone` otherwise."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local_zone()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris' or 'UTC')"
        ) from None


# ---------------------------------------------------------------------------------------
# parsing


def parse_schedule(
    text: str, *, time_zone: str | None = None, default_zone: tzinfo | None = None
) -> CronSchedule | EverySchedule:
    """Parse ``text`` (see the module doc).

    The zone is, in order: a ``CRON_TZ=``/``TZ=`` prefix of ``text``, ``time_zone`` (a
    CronJob's ``spec.timeZone``), ``default_zone``, the process's :func:`local_zone`.
    """
    spec = text.strip()
    zone: tzinfo | None = None
    if spec.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, spec = spec.partition(" ")
        zone = load_zone(prefix.partition("=")[2])
        spec = spec.strip()
    elif time_zone is not None:
        zone = load_zone(time_zone)
    if zone is None:
        zone = default_zone if default_zone is not None else local_zone()
    if not spec:
        raise CronSyntaxError("empty schedule (expected 5 fields or a descriptor like @daily)")
    if spec.startswith("@every"):
        return EverySchedule(_parse_every(spec[len("@every") :].strip()))
    if spec.startswith("@"):
        expanded = _DESCRIPTORS.get(spec.lower())
        if expanded is None:
            raise CronSyntaxError(
                f"unrecognized descriptor {spec!r} "
                f"(allowed: {', '.join(_DESCRIPTORS)}, @every <duration>)"
            )
        spec = expanded
    parts = spec.split()
    if len(parts) != 5:
        raise CronSyntaxError(f"expected exactly 5 fields, found {len(parts)}: {spec!r}")
    parsed = [_parse_field(part, f) for part, f in zip(parts, _FIELDS, strict=True)]
    return CronSchedule(
        minutes=tuple(sorted(parsed[0][0])),
        hours=tuple(sorted(parsed[1][0])),
        days_of_month=frozenset(parsed[2][0]),
        months=frozenset(parsed[3][0]),
        days_of_week=frozenset(parsed[4][0]),
        dom_star=parsed[2][1],
        dow_star=parsed[4][1],
        zone=zone,
    )


def _parse_every(text: str) -> timedelta:
    if not text:
        raise CronSyntaxError("@every needs a duration, like '@every 1h30m'")
    pos = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise CronSyntaxError(
            f"invalid duration {text!r} in @every (expected e.g. 90s, 5m, 1h30m; "
            f"units: h, m, s, ms, us, ns)"
        )
    # As robfig/cron: whole seconds, at least one.
    return timedelta(seconds=max(1, int(seconds)))


def _parse_field(text: str, f: _Field) -> tuple[set[int], bool]:
    """The values ``text`` selects, and whether it is unrestricted (a star)."""
    values: set[int] = set()
    star = False
    for item in text.split(","):
        if not item:
            raise CronSyntaxError(f"{f.name} field {text!r}: empty list item")
        selected, item_star = _parse_item(item, f)
        values |= selected
        star = star or item_star
    return values, star


def _parse_item(item: str, f: _Field) -> tuple[set[int], bool]:
    where = f"{f.name} field item {item!r}"
    range_part, slash, step_part = item.partition("/")
    if "/" in step_part:
        raise CronSyntaxError(f"{where}: too many slashes")
    star = False
    if range_part in ("*", "?"):
        low, high, star = f.low, f.high, True
    else:
        bounds = range_part.split("-")
        if len(bounds) > 2:
            raise CronSyntaxError(f"{where}: too many hyphens")
        low = _value(bounds[0], f, where)
        high = _value(bounds[1], f, where) if len(bounds) == 2 else low
        if slash and len(bounds) == 1:
            high = f.high  # "N/step" means "N-max/step"
    step = 1
    if slash:
        if not step_part.isdigit():
            raise CronSyntaxError(f"{where}: step {step_part!r} is not a positive number")
        step = int(step_part)
        if step == 0:
            raise CronSyntaxError(f"{where}: step must be a positive number, not 0")
        if step > 1:
            star = False
    if low > high:
        raise CronSyntaxError(f"{where}: range start {low} is beyond its end {high}")
    return set(range(low, high + 1, step)), star


def _value(text: str, f: _Field, where: str) -> int:
    if f.names is not None and text.lower() in f.names:
        return f.names[text.lower()]
    if not text.isdigit():
        allowed = f"{f.low}-{f.high}"
        if f.names is not None:
            allowed += " or " + "/".join(n.upper() for n in f.names)
        raise CronSyntaxError(f"{where}: {text!r} is not a number (allowed: {allowed})")
    value = int(text)
    if not f.low <= value <= f.high:
        raise CronSyntaxError(f"{where}: {value} is outside {f.low}-{f.high}")
    return value


# ---------------------------------------------------------------------------------------
# schedules


@dataclass(frozen=True)
class EverySchedule:
    """``@every <interval>``: the truncated-to-the-second time plus ``interval``."""

    interval: timedelta

    def next_after(self, t: datetime) -> datetime:
        _require_aware(t)
        return t.astimezone(UTC).replace(microsecond=0) + self.interval


@dataclass(frozen=True)
class CronSchedule:
    """Five parsed cron fields in a zone; see the module doc for the semantics."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    dom_star: bool
    dow_star: bool
    zone: tzinfo

    def day_matches(self, d: date) -> bool:
        dom = d.day in self.days_of_month
        dow = (d.weekday() + 1) % 7 in self.days_of_week
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def matches(self, t: datetime) -> bool:
        """Whether the aware instant ``t`` is a firing (a whole minute that matches)."""
        _require_aware(t)
        local = t.astimezone(self.zone)
        return (
            local.second == 0
            and local.microsecond == 0
            and local.minute in self.minutes
            and local.hour in self.hours
            and local.month in self.months
            and self.day_matches(local.date())
        )

    def next_after(self, t: datetime) -> datetime | None:
        """The first firing strictly after ``t`` (aware), in the schedule's zone, or None
        if there is none within :data:`SEARCH_YEARS` years."""
        _require_aware(t)
        zone = self.zone
        cur = _next_local_minute(t.astimezone(UTC), zone)
        last_year = t.astimezone(zone).year + SEARCH_YEARS
        while True:
            local = cur.astimezone(zone)
            if local.year > last_year:
                return None
            wall = local.replace(tzinfo=None, fold=0)
            target = self._next_wall(wall, last_year)
            if target is None:
                return None
            if target == wall:
                return local
            cur = _advance(cur, cur + (target - wall), zone, local.utcoffset())

    def _next_wall(self, start: datetime, last_year: int) -> datetime | None:
        """The first naive wall time at or after ``start`` (a whole minute) that matches."""
        d = start.date()
        first = True
        while d.year <= last_year:
            if d.month not in self.months:
                d = (d.replace(day=1) + timedelta(days=32)).replace(day=1)
                first = False
                continue
            if self.day_matches(d):
                hour, minute = (start.hour, start.minute) if first else (0, 0)
                found = _first_time(self.hours, self.minutes, hour, minute)
                if found is not None:
                    return datetime(d.year, d.month, d.day, found[0], found[1])
            d += timedelta(days=1)
            first = False
        return None


def _first_time(
    hours: Sequence[int], minutes: Sequence[int], hour: int, minute: int
) -> tuple[int, int] | None:
    """The earliest (h, m) >= (hour, minute) with h in ``hours``, m in ``minutes``."""
    i = bisect.bisect_left(hours, hour)
    if i < len(hours) and hours[i] == hour:
        j = bisect.bisect_left(minutes, minute)
        if j < len(minutes):
            return hour, minutes[j]
        i += 1
    if i < len(hours):
        return hours[i], minutes[0]
    return None


def _advance(cur: datetime, nxt: datetime, zone: tzinfo, offset: timedelta | None) -> datetime:
    """``nxt``, or the first whole local minute after an offset transition in (cur, nxt]
    if there is one (probing every :data:`_MAX_STEP`, bisecting the step that changed)."""
    probe = cur
    while probe < nxt:
        far = min(probe + _MAX_STEP, nxt)
        if far.astimezone(zone).utcoffset() != offset:
            return _next_local_minute(_transition(probe, far, zone, offset), zone, inclusive=True)
        probe = far
    return nxt


def _next_local_minute(t: datetime, zone: tzinfo, *, inclusive: bool = False) -> datetime:
    """The first instant after ``t`` (or at it, if ``inclusive``) at which the zone's
    wall clock shows a whole minute; ``t`` is a UTC datetime (absolute arithmetic)."""
    local = t.astimezone(zone)
    past = timedelta(seconds=local.second, microseconds=local.microsecond)
    if inclusive and not past:
        return t
    return t + (timedelta(minutes=1) - past)


def _transition(lo: datetime, hi: datetime, zone: tzinfo, offset: timedelta | None) -> datetime:
    """The first instant in (lo, hi] whose UTC offset in ``zone`` is not ``offset``
    (``hi`` has another offset; bisection to the second). Both are UTC datetimes, so
    that arithmetic on them is absolute, not wall-clock."""
    low, high = 0, int((hi - lo).total_seconds())
    while high - low > 1:
        mid = (low + high) // 2
        if (lo + timedelta(seconds=mid)).astimezone(zone).utcoffset() == offset:
            low = mid
        else:
            high = mid
    return lo + timedelta(seconds=high)


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"a time zone-aware datetime is required, not {t!r}")
