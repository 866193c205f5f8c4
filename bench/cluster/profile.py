"""Sampling profiles of cluster processes with py-spy, summarized as text.

:class:`Profiler` starts ``py-spy record --format raw`` on each named pid (non-blocking:
the target is not paused while sampled) and stops them with SIGINT, on which py-spy
writes its collapsed stacks (``frame;frame;... count``). :func:`summarize_stacks` turns a
file into the figures that matter here: how busy the process was (samples taken against
samples possible at the rate; py-spy leaves out idle threads) and the functions with the
most samples, on top of the stack (self) and anywhere in it (inclusive).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RATE = 50


@dataclass(frozen=True)
class StackSummary:
    name: str
    samples: int
    busy_percent: float
    """Samples / (rate x seconds): about the % of one core the sampled threads ran."""
    top_self: list[tuple[str, float]]
    top_inclusive: list[tuple[str, float]]


def _frame(text: str) -> str:
    return re.sub(r":\d+\)$", ")", text)


def summarize_stacks(name: str, path: Path, *, seconds: float, top: int = 15) -> StackSummary:
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for f in set(frames):
            anywhere[f] += count

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(f, 100 * c / total) for f, c in counter.most_common(top)] if total else []

    possible = RATE * seconds
    return StackSummary(
        name=name,
        samples=total,
        busy_percent=100 * total / possible if possible else float("nan"),
        top_self=share(own),
        top_inclusive=share(anywhere),
    )


class Profiler:
    """py-spy on several processes at once; ``start()``, then ``stop()`` for summaries."""

    def __init__(self, pids: Mapping[str, int], out_dir: Path) -> None:
        self.pids = dict(pids)
        self.out_dir = out_dir
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started = 0.0

    @staticmethod
    def available() -> bool:
        return shutil.which("py-spy") is not None

    def path(self, name: str) -> Path:
        return self.out_dir / f"{name}.txt"

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        for name, pid in self.pids.items():
            argv = [
                "py-spy", "record", f"--pid={pid}", f"--rate={RATE}", "--format=raw",
                f"--output={self.path(name)}", "--nonblocking",
            ]  # fmt: skip
            log = open(self.out_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed by the child's end)
            self._procs[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            log.close()

    def stop(self) -> list[StackSummary]:
        seconds = time.monotonic() - self._started
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        out = []
        for name, proc in self._procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if self.path(name).exists():
                out.append(summarize_stacks(name, self.path(name), seconds=seconds))
        self._procs.clear()
        return out
