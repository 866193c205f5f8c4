"""What each process of a cluster costs: CPU and resident memory, read from ``/proc``.

A :class:`CostMeter` is given named pids (the cluster's from ``raftsman status -o json``,
the simulated nodes' process, the benchmark itself). ``start()`` reads every process's
CPU seconds (utime + stime of ``/proc/PID/stat``); while it runs, :meth:`CostMeter.poll`
(called about once a second) records each one's resident set (``VmRSS`` of
``/proc/PID/status``) so that the peak is known; ``stop()`` reads the CPU seconds again
and returns one :class:`Cost` per process: CPU in % of one core over the window (the
machine has 2 cores: 200 % is all of it) and RSS at the end and at its peak.

A process that exits during the window (a component restarted by the supervisor) is
reported with what was read before it went away; its replacement has another pid and is
not followed -- the restart itself shows in ``raftsman status``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process has used; ``OSError`` if it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size in bytes; ``OSError`` if the process is gone."""
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * _PAGE


@dataclass(frozen=True)
class Cost:
    name: str
    pid: int
    cpu_seconds: float
    """CPU seconds (user + system) used over the window."""
    cpu_percent: float
    """CPU used over the window, % of one core."""
    rss_mb: float
    """Resident memory at the end of the window (MiB)."""
    peak_rss_mb: float
    """Highest resident memory seen during the window (MiB)."""


class CostMeter:
    """CPU and RSS of named processes over a window; see the module doc."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._cpu0: dict[str, float] = {}
        self._cpu_last: dict[str, float] = {}
        self._rss: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        for name, pid in self.pids.items():
            try:
                self._cpu0[name] = self._cpu_last[name] = cpu_seconds(pid)
            except OSError:
                continue
        self.poll()

    def poll(self) -> None:
        """Record every process's RSS (and CPU, in case it exits before :meth:`stop`)."""
        for name, pid in self.pids.items():
            try:
                rss = rss_bytes(pid)
                self._cpu_last[name] = cpu_seconds(pid)
            except OSError:
                continue
            self._rss[name] = rss
            self._peak[name] = max(rss, self._peak.get(name, 0))

    def stop(self) -> list[Cost]:
        self.poll()
        wall = time.monotonic() - self._t0
        out = []
        for name, pid in self.pids.items():
            used = self._cpu_last.get(name, math.nan) - self._cpu0.get(name, math.nan)
            out.append(
                Cost(
                    name=name,
                    pid=pid,
                    cpu_seconds=used,
                    cpu_percent=100 * used / wall if wall > 0 else math.nan,
                    rss_mb=self._rss.get(name, 0) / 2**20 or math.nan,
                    peak_rss_mb=self._peak.get(name, 0) / 2**20 or math.nan,
                )
            )
        return out
