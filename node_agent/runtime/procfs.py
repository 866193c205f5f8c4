"""What ``/proc`` says about a process: identity, liveness, process group, cpu and memory.

A pid alone does not name a process for long: after it exits and is reaped, the kernel
may hand the number to an unrelated process. The process runtime therefore records every
pid it cares about together with its *start time* (field 22 of ``/proc/<pid>/stat``, in
clock ticks since boot) and treats a pid as "the same process" only while both match.
A zombie (exited, not yet reaped) counts as gone.

Everything here reads small files synchronously: each read is a few microseconds and
never blocks on the network or a disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ProcStat", "group_members", "is_running", "read_stat", "CLOCK_TICKS", "PAGE_SIZE"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the runtime uses."""

    pid: int
    state: str
    ppid: int
    pgid: int
    utime_ticks: int
    stime_ticks: int
    nice: int
    start_ticks: int
    rss_pages: int

    @property
    def cpu_seconds(self) -> float:
        return (self.utime_ticks + self.stime_ticks) / CLOCK_TICKS

    @property
    def rss_bytes(self) -> int:
        return self.rss_pages * PAGE_SIZE


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat`` parsed, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0].decode(),
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        utime_ticks=int(fields[11]),
        stime_ticks=int(fields[12]),
        nice=int(fields[16]),
        start_ticks=int(fields[19]),
        rss_pages=int(fields[21]),
    )


def is_running(pid: int, start_ticks: int) -> bool:
    """Whether ``pid`` is still the process that started at ``start_ticks`` and not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.start_ticks == start_ticks and stat.state not in ("Z", "X")


def group_members(pgid: int) -> list[ProcStat]:
    """Every live process whose process group is ``pgid`` (one scan of ``/proc``)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read_stat(int(name))
        if stat is not None and stat.pgid == pgid and stat.state not in ("Z", "X"):
            members.append(stat)
    return members
