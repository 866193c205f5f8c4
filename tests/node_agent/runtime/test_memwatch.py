"""The memory watchdog on a fake ``/proc`` and a fake clock (real processes: test_limits.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from node_agent.runtime import memwatch
from node_agent.runtime.base import Enforcement
from node_agent.runtime.memwatch import GroupMembers, Watchdog, charged_bytes, format_bytes

MiB = 1024 * 1024


class FakeProc:
    """A directory shaped like ``/proc``: ``<pid>/stat`` and ``<pid>/status`` per process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        (root / "self").mkdir()  # non-pid entries are ignored

    @property
    def path(self) -> str:
        return str(self.root)

    def add(
        self, pid: int, pgid: int, *, anon_kib: int, shmem_kib: int = 0, state: str = "S"
    ) -> None:
        directory = self.root / str(pid)
        directory.mkdir(exist_ok=True)
        # Field 2 may hold spaces and parentheses; the parser must split after the last ')'.
        (directory / "stat").write_text(
            f"{pid} (a (weird) name) {state} 1 {pgid} {pgid} 0 -1 4194560 "
            + " ".join(["0"] * 44)
            + "\n"
        )
        (directory / "status").write_text(
            f"Name:\tpython3\nVmRSS:\t{anon_kib + shmem_kib + 9000} kB\n"
            f"RssAnon:\t{anon_kib} kB\nRssFile:\t9000 kB\nRssShmem:\t{shmem_kib} kB\n"
        )

    def remove(self, pid: int) -> None:
        shutil.rmtree(self.root / str(pid))


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


def test_charged_memory_is_anonymous_plus_shmem_without_file_pages(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=2048, shmem_kib=1024)
    assert charged_bytes(10, proc.path) == 3 * MiB
    assert charged_bytes(11, proc.path) is None


def test_old_kernels_without_rss_anon_fall_back_to_vmrss(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=0)
    (proc.root / "10" / "status").write_text("Name:\tx\nVmRSS:\t4096 kB\n")
    assert charged_bytes(10, proc.path) == 4 * MiB


def test_the_real_proc_reports_this_process() -> None:
    charged = charged_bytes(os.getpid())
    assert charged is not None and charged > 0


def test_members_are_the_live_processes_of_the_group(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=1)
    proc.add(11, 10, anon_kib=1)
    proc.add(12, 12, anon_kib=1)  # another group
    proc.add(13, 10, anon_kib=0, state="Z")  # a zombie holds no memory
    members = GroupMembers(10, proc=proc.path)
    assert members.refresh() == [10, 11]
    proc.add(14, 10, anon_kib=1)  # forked since
    proc.remove(11)  # exited
    assert members.refresh() == [10, 14]
    proc.add(10, 10, anon_kib=1, state="Z")  # the leader exited, not yet reaped
    assert members.refresh() == [14]


def test_a_pid_reused_between_listings_is_found_by_the_next_full_scan(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=1)
    proc.add(20, 99, anon_kib=1)
    members = GroupMembers(10, proc=proc.path, full_scan_every=3)
    assert members.refresh() == [10]  # full scan
    # pid 20 exits and is reused by a process of the group before the next listing (or a
    # process of another group joins it): the listing looks unchanged, so incremental
    # samples do not read it again...
    proc.add(20, 10, anon_kib=1)
    assert members.refresh() == [10]
    assert members.refresh() == [10]
    # ...until the next full scan.
    assert members.refresh() == [10, 20]


def test_watchdog_samples_on_its_interval_and_trips_above_the_limit(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=20 * 1024)
    dog = Watchdog(10, 64 * MiB, interval=0.2, proc=proc.path)
    assert dog.timeout(100.0) == 0.0  # the first check samples at once
    assert dog.check(100.0) is False
    assert (dog.usage, dog.samples) == (20 * MiB, 1)
    assert dog.timeout(100.05) == pytest.approx(0.15)
    proc.add(11, 10, anon_kib=30 * 1024, shmem_kib=20 * 1024)  # 70 MiB in the group
    assert dog.check(100.1) is False  # not due: no sample
    assert dog.samples == 1
    assert dog.check(100.2) is True
    assert (dog.usage, dog.samples) == (70 * MiB, 2)
    assert dog.message() == (
        "memory usage 70Mi exceeded the limit 64Mi (resident memory sampled every 200 ms; "
        "the container's process group was killed)"
    )


def test_watchdog_at_the_limit_is_not_over_it(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=64 * 1024)
    assert Watchdog(10, 64 * MiB, proc=proc.path).check(0.0) is False


def test_a_process_that_left_the_group_is_not_counted(proc: FakeProc) -> None:
    proc.add(10, 10, anon_kib=10 * 1024)
    proc.add(11, 10, anon_kib=100 * 1024)
    dog = Watchdog(10, 64 * MiB, proc=proc.path)
    proc.add(11, 11, anon_kib=100 * 1024)  # setsid
    assert dog.check(0.0) is False and dog.usage == 10 * MiB


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="memory limit must be positive, got 0"):
        Watchdog(1, 0)
    with pytest.raises(ValueError, match="sampling interval must be positive, got -1"):
        Watchdog(1, MiB, interval=-1)
    with pytest.raises(ValueError, match="full_scan_every must be >= 1, got 0"):
        GroupMembers(1, full_scan_every=0)


def test_sizes_read_as_kubernetes_quantities() -> None:
    assert [format_bytes(n) for n in (512, 2048, 64 * MiB, 1536 * MiB, 70 * MiB + 100)] == [
        "512",
        "2Ki",
        "64Mi",
        "1.5Gi",
        "70Mi",
    ]


def test_the_node_reports_the_sampling_interval() -> None:
    assert f"every {round(memwatch.INTERVAL * 1000)} ms" in Enforcement.WATCHDOG.value
