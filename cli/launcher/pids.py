"""Is a recorded pid still the process we started, and signalling its process group.

A pid in the state file can outlive its process and be reused by an unrelated one. So
along with the pid we record the process's start time (field 22 of ``/proc/PID/stat``,
clock ticks since boot); a pid counts as alive only while a process with that pid and that
start time exists and is not a zombie. Where ``/proc`` is missing the start time is not
checked.

Every component runs as the leader of its own session, so its pid is also its process
group id: signalling the group reaches whatever it forked.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    # fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int | None, pid_start: int | None) -> bool:
    """True while ``pid`` runs and is the process that started at ``pid_start``."""
    if pid is None or pid <= 0:
        return False
    if Path("/proc").is_dir():
        ticks = start_ticks(pid)
        return ticks is not None and (pid_start is None or ticks == pid_start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid``; a group that is gone is ignored."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_gone(procs: Iterable[tuple[int | None, int | None]], *, timeout: float) -> bool:
    """Poll until none of ``(pid, pid_start)`` is alive; False if ``timeout`` passes first."""
    pending = [p for p in procs if alive(*p)]
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
        pending = [p for p in pending if alive(*p)]
    return True
