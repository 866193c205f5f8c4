"""The machine a figure was taken on: CPU model, cores, Python, commit, load at start.

Every table the benchmarks write starts with this line, because on a shared 2-core VM the
same code gives numbers that differ by tens of percent with the load of the moment: a
figure without its machine and load average cannot be compared with another.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    python: str
    commit: str
    """Short hash of HEAD, with ``+modified`` when the tree has uncommitted changes."""
    when: str
    load_average: float
    """1-minute load average when the measurement started."""

    def line(self) -> str:
        return (
            f"{self.cpu}, {self.cores} cores, Python {self.python}, raftsman {self.commit}, "
            f"{self.when}; load average {self.load_average:.1f} at start"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown"
    return f"{rev}+modified" if dirty else rev


def this_machine() -> Machine:
    """The machine now (call it when a measurement starts: the load average is taken here)."""
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        python=platform.python_version(),
        commit=_commit(),
        when=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=os.getloadavg()[0],
    )
