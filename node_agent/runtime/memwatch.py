"""Memory limits without cgroups: a watchdog that samples a container's memory and kills it.

The problem. With a writable cgroup hierarchy the kernel enforces a container's memory
limit exactly: the allocation that crosses it triggers the OOM killer, the cgroup counts
an ``oom_kill``, and the container ends with exit code 137 and reason ``OOMKilled``.
Without cgroups (no root, no delegated subtree) there is no such accounting. The old
fallback, ``RLIMIT_AS``, caps *virtual* address space per process: the allocation that
crosses it fails with ENOMEM (Python's ``MemoryError``, exit 1, reason ``Error``), and
runtimes that reserve far more address space than they use -- Go's heap arenas, the JVM's
heap and class space, glibc's per-thread malloc arenas -- fail at start-up under limits
they would never reach in resident memory. Any multiple of the limit has the same flaw at
small limits, so ``RLIMIT_AS`` is not kept even as a backstop.

The design. The container's shim (:mod:`node_agent.runtime.shim`), which is awake anyway
to copy the container's output, calls :meth:`Watchdog.check` every :data:`INTERVAL`
(200 ms). A check sums the memory of every live process of the container's process group
and, when the sum exceeds the limit, the shim SIGKILLs the whole group and records the
exit as the kernel would: exit code 137 (signal 9), reason ``OOMKilled``.

What is counted: per process, ``RssAnon + RssShmem`` from ``/proc/<pid>/status`` -- the
resident set without its file-backed pages. File-backed pages (the interpreter, shared
libraries, mapped files) are shared between processes and reclaimable, so the kernel
drops them before it OOM-kills anyone; summing them per process would count libc once
for every process of a pipeline. Anonymous pages shared after a ``fork`` are still
counted once per process (an overestimate, as ``ps`` shows); kernels without those fields
(before 4.5) fall back to ``VmRSS``.

Which processes: members of the container's process group (the container's main process
leads it, in a session of its own). Scanning all of ``/proc`` for them costs about 25 us
per host process, too much every 200 ms on a busy host, so :class:`GroupMembers` tracks
them incrementally: each sample lists ``/proc`` (one ``getdents``), reads ``stat`` only of
pids that are new since the previous listing and of the known members (to see them exit
or leave the group), and rescans everything every ``full_scan_every`` samples (5 s) to
catch a pid reused between two listings.

Trade-offs, compared with the kernel's OOM killer (which is exact):

* A burst faster than the sampling interval overshoots: a program that allocates and
  touches 1 GiB within 200 ms holds it until the next sample. The host's own OOM killer
  remains the last resort.
* A process that leaves the group (``setsid``, ``setpgid``) is neither counted nor
  killed; commands run with ``exec`` run in groups of their own and are not counted.
* A ``medium: Memory`` emptyDir (files in ``/dev/shm``) is not charged to the container,
  whereas a cgroup charges tmpfs pages to whoever wrote them.

This module imports nothing outside the standard library (the shim runs under
``python -S -I`` and imports it as a top-level module). Times are ``time.monotonic()``
seconds, passed in by the caller, so tests drive the watchdog on a fake clock and a fake
``/proc`` directory.
"""

from __future__ import annotations

import os

__all__ = ["INTERVAL", "GroupMembers", "Watchdog", "charged_bytes", "format_bytes"]

INTERVAL = 0.2
"""Seconds between two samples (the node reports it: "RSS sampled every 200 ms")."""

FULL_SCAN_EVERY = 25
"""Samples between two full scans of ``/proc`` (5 s at :data:`INTERVAL`)."""

_KIB = 1024


def _stat_group(proc: str, name: str) -> int | None:
    """The process group of the live process ``name`` (a pid), None if it is gone or a zombie."""
    try:
        with open(f"{proc}/{name}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 3 or fields[0] in (b"Z", b"X"):
        return None
    try:
        return int(fields[2])
    except ValueError:
        return None


def charged_bytes(pid: int | str, proc: str = "/proc") -> int | None:
    """Resident anonymous + shmem memory of ``pid`` (``VmRSS`` on old kernels); None if gone."""
    try:
        with open(f"{proc}/{pid}/status", "rb") as f:
            data = f.read()
    except OSError:
        return None
    found: dict[bytes, int] = {}
    for line in data.split(b"\n"):
        if line.startswith((b"RssAnon:", b"RssShmem:", b"VmRSS:")):
            key, _, rest = line.partition(b":")
            try:
                found[key] = int(rest.split()[0]) * _KIB
            except (IndexError, ValueError):
                continue
    if b"RssAnon" in found:
        return found[b"RssAnon"] + found.get(b"RssShmem", 0)
    return found.get(b"VmRSS", 0)


class GroupMembers:
    """The live members of process group ``pgid``, found incrementally (see the module doc)."""

    def __init__(self, pgid: int, *, proc: str = "/proc", full_scan_every: int = FULL_SCAN_EVERY):
        if full_scan_every < 1:
            raise ValueError(f"full_scan_every must be >= 1, got {full_scan_every}")
        self.pgid = pgid
        self.proc = proc
        self.full_scan_every = full_scan_every
        self._listing: set[str] = set()
        self._members: set[str] = set()
        self._scans = 0

    def refresh(self) -> list[int]:
        """The pids of the group's live members now, sorted."""
        try:
            listing = set(os.listdir(self.proc))
        except OSError:
            listing = set()
        if self._scans % self.full_scan_every == 0:
            candidates = listing
        else:
            candidates = (listing - self._listing) | (self._members & listing)
        self._scans += 1
        self._listing = listing
        self._members = {
            name
            for name in candidates
            if name.isdigit() and _stat_group(self.proc, name) == self.pgid
        }
        return sorted(int(name) for name in self._members)


class Watchdog:
    """Samples the memory of process group ``pgid`` every ``interval`` against ``limit``.

    The caller (the shim's event loop) asks :meth:`timeout` how long it may sleep, calls
    :meth:`check` whenever it wakes, and kills the group when ``check`` returns True. A
    check before the next sample is due does nothing; the first check samples at once.
    """

    def __init__(
        self,
        pgid: int,
        limit: int,
        *,
        interval: float = INTERVAL,
        proc: str = "/proc",
        full_scan_every: int = FULL_SCAN_EVERY,
    ) -> None:
        if limit <= 0:
            raise ValueError(f"the memory limit must be positive, got {limit}")
        if interval <= 0:
            raise ValueError(f"the sampling interval must be positive, got {interval}")
        self.limit = limit
        self.interval = interval
        self.proc = proc
        self.members = GroupMembers(pgid, proc=proc, full_scan_every=full_scan_every)
        self.usage = 0
        """The last sample, in bytes."""
        self.samples = 0
        self._due: float | None = None

    def timeout(self, now: float) -> float:
        """Seconds until the next sample is due (0: now)."""
        return 0.0 if self._due is None else max(0.0, self._due - now)

    def check(self, now: float) -> bool:
        """Sample if one is due; True when that sample exceeds the limit."""
        if self._due is not None and now < self._due:
            return False
        self._due = now + self.interval
        self.usage = self.sample()
        self.samples += 1
        return self.usage > self.limit

    def sample(self) -> int:
        """The group's memory now: the sum over its live members."""
        return sum(charged_bytes(pid, self.proc) or 0 for pid in self.members.refresh())

    def message(self) -> str:
        """Why the container was killed, for its terminated state."""
        return (
            f"memory usage {format_bytes(self.usage)} exceeded the limit "
            f"{format_bytes(self.limit)} (resident memory sampled every "
            f"{round(self.interval * 1000)} ms; the container's process group was killed)"
        )


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it >= 1, one decimal: ``64Mi``, ``1.5Gi``."""
    if n < 1024:
        return str(n)
    units = ("Ki", "Mi", "Gi", "Ti")
    value, index = n / 1024, 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{value:.1f}".removesuffix(".0") + units[index]
