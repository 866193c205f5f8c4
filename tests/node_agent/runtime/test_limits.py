"""Resource limits of the process runtime: the memory watchdog and nice without cgroups,
cgroups where the host allows (root)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node_agent.runtime import logs, procfs
from node_agent.runtime.base import Enforcement, Limits
from node_agent.runtime.cgroups import (
    CgroupUnavailable,
    ContainerCgroup,
    cgroup_dir,
    detect,
    parse_mountinfo,
    parse_proc_cgroup,
)
from node_agent.runtime.process import ProcessRuntime, nice_for_cpu
from tests.node_agent.runtime.conftest import SpecFactory
from tests.support.processes import async_wait_for

MiB = 1024 * 1024


def _allocate(mib: int, *, hold: float = 0) -> list[str]:
    # Touch every page so that the memory is really used (resident, not just reserved).
    return [
        sys.executable,
        "-c",
        f"import time; b = bytearray({mib} * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
        f"print('allocated', flush=True); time.sleep({hold})",
    ]


@pytest.fixture
async def watchdog_runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime without cgroups (as without root): the memory watchdog enforces."""
    runtime = ProcessRuntime(
        state_dir=tmp_path / "watchdog-containers", enforcement=Enforcement.WATCHDOG
    )
    yield runtime
    for info in await runtime.containers():
        if info.status.running:
            await runtime.stop(info.id, grace=0)
        await runtime.remove(info.id)


async def test_watchdog_oom_kills_a_container_over_its_memory_limit(
    watchdog_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    assert watchdog_runtime.enforcement is Enforcement.WATCHDOG
    hog = make_spec("hog", _allocate(200, hold=60), limits=Limits(memory_bytes=64 * MiB))
    status = await watchdog_runtime.wait(await watchdog_runtime.start(hog))
    assert (status.exit_code, status.signal, status.reason) == (137, 9, "OOMKilled")
    assert status.message.startswith("memory usage ")
    assert "exceeded the limit 64Mi" in status.message
    # Killed at the first sample after the allocation, not when the program ended (60 s).
    assert status.started_at is not None and status.finished_at is not None
    assert (status.finished_at - status.started_at).total_seconds() < 20


async def test_watchdog_leaves_a_container_under_its_limit_alone(
    watchdog_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    # 16 MiB held for 1 s (several samples) under a 64 MiB limit: it ends on its own.
    fits = make_spec("fits", _allocate(16, hold=1), limits=Limits(memory_bytes=64 * MiB))
    container_id = await watchdog_runtime.start(fits)
    status = await watchdog_runtime.wait(container_id)
    assert (status.exit_code, status.signal, status.reason) == (0, 0, "Completed")
    assert status.message == ""


async def test_watchdog_sums_the_group_and_kills_all_of_it(
    watchdog_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    # Two children of 40 MiB each: neither alone, but the group, exceeds 64 MiB.
    child = shlex.join(_allocate(40, hold=60))
    spec = make_spec(
        "pair",
        ["sh", "-c", f"{child} & {child} & wait"],
        limits=Limits(memory_bytes=64 * MiB),
    )
    container_id = await watchdog_runtime.start(spec)
    status = await watchdog_runtime.wait(container_id)
    assert (status.exit_code, status.reason) == (137, "OOMKilled")
    assert status.pid is not None
    assert procfs.group_members(status.pid) == []


async def test_watchdog_cpu_limit_lowers_the_priority(
    watchdog_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    container_id = await watchdog_runtime.start(
        make_spec("nice", ["sleep", "1000"], limits=Limits(cpu_millis=100))
    )
    status = await watchdog_runtime.status(container_id)
    assert status.pid is not None
    stat = procfs.read_stat(status.pid)
    assert stat is not None
    assert stat.nice == nice_for_cpu(100) == 15


async def test_stats_without_cgroups_report_what_the_watchdog_counts(
    watchdog_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("held", _allocate(32, hold=60))
    container_id = await watchdog_runtime.start(spec)
    await async_wait_for(
        lambda: _logged(spec.log_path, b"allocated"), timeout=10, message="the allocation"
    )
    stats = await watchdog_runtime.stats(container_id)
    assert 32 * MiB <= stats.memory_bytes < 64 * MiB


def test_nice_levels_follow_the_cpu_limit() -> None:
    assert [nice_for_cpu(m) for m in (None, 2000, 1000, 500, 250, 100)] == [0, 0, 0, 5, 10, 15]


def _cgroups_or_skip() -> Enforcement:
    """The cgroup version usable here; skips (fails under RAFTSMAN_REQUIRE_ALL=1) if none."""
    try:
        return detect().version
    except CgroupUnavailable as exc:
        if os.environ.get("RAFTSMAN_REQUIRE_ALL") == "1":
            pytest.fail(f"RAFTSMAN_REQUIRE_ALL=1 but no cgroup hierarchy is writable: {exc}")
        pytest.skip(f"no writable cgroup hierarchy: {exc}")


@pytest.fixture
async def cgroup_runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    version = _cgroups_or_skip()
    runtime = ProcessRuntime(state_dir=tmp_path / "cgroup-containers", enforcement=version)
    yield runtime
    for info in await runtime.containers():
        if info.status.running:
            await runtime.stop(info.id, grace=0)
        await runtime.remove(info.id)


def _cgroup(runtime: ProcessRuntime, container_id: str) -> ContainerCgroup:
    import json

    data = json.loads((runtime.state_dir / container_id / "spec.json").read_text())
    return ContainerCgroup.from_json(data["cgroup"])


@pytest.mark.needs_root
async def test_cgroup_memory_limit_oom_kills_and_reports_oomkilled(
    cgroup_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    limits = Limits(memory_bytes=64 * MiB)
    fits = await cgroup_runtime.wait(
        await cgroup_runtime.start(make_spec("fits", _allocate(8), limits=limits))
    )
    assert (fits.exit_code, fits.reason) == (0, "Completed")
    status = await cgroup_runtime.wait(
        await cgroup_runtime.start(make_spec("hog", _allocate(256), limits=limits))
    )
    assert (status.exit_code, status.signal, status.reason) == (137, 9, "OOMKilled")


@pytest.mark.needs_root
async def test_cgroup_limits_usage_and_cleanup(
    cgroup_runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        "limited",
        ["sh", "-c", "sleep 1000 & echo ready; wait"],
        limits=Limits(cpu_millis=250, memory_bytes=128 * MiB),
    )
    container_id = await cgroup_runtime.start(spec)
    await async_wait_for(
        lambda: _logged(spec.log_path, b"ready"), timeout=10, message="the container to be ready"
    )
    cgroup = _cgroup(cgroup_runtime, container_id)
    if cgroup.version is Enforcement.CGROUP_V2:
        assert (cgroup.memory_dir / "memory.max").read_text().strip() == str(128 * MiB)
        if (cgroup.memory_dir / "cpu.max").exists():
            assert (cgroup.memory_dir / "cpu.max").read_text().split() == ["25000", "100000"]
    else:
        assert (cgroup.memory_dir / "memory.limit_in_bytes").read_text().strip() == str(128 * MiB)
        cpu_dirs = [d for d in cgroup.dirs if (d / "cpu.cfs_quota_us").exists()]
        if cpu_dirs:
            assert (cpu_dirs[0] / "cpu.cfs_quota_us").read_text().strip() == "25000"
            assert (cpu_dirs[0] / "cpu.cfs_period_us").read_text().strip() == "100000"
    status = await cgroup_runtime.status(container_id)
    assert status.pid in cgroup.members()
    assert len(cgroup.members()) == 2  # sh and its background sleep
    stats = await cgroup_runtime.stats(container_id)
    assert stats.processes == 2 and stats.memory_bytes > 0
    await cgroup_runtime.stop(container_id, grace=5)
    await cgroup_runtime.remove(container_id)
    assert not any(d.exists() for d in cgroup.dirs)


async def _logged(path: Path, text: bytes) -> bool:
    return any(text in r.content for r in logs.read_log(path))


def test_mountinfo_and_proc_cgroup_locate_the_agents_cgroups() -> None:
    mountinfo = (
        "24 30 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755\n"
        "30 24 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "31 24 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "32 24 0:28 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
        "33 24 0:29 /agent.scope /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    mounts = parse_mountinfo(mountinfo)
    assert [(m.fstype, str(m.mount_point)) for m in mounts] == [
        ("cgroup", "/sys/fs/cgroup/memory"),
        ("cgroup", "/sys/fs/cgroup/cpu,cpuacct"),
        ("cgroup", "/sys/fs/cgroup/cpuset"),
        ("cgroup2", "/sys/fs/cgroup/unified"),
    ]
    assert "cpu" in mounts[1].options and "cpu" not in mounts[2].options
    own = parse_proc_cgroup("5:memory:/user/agent\n3:cpu,cpuacct:/user\n0::/agent.scope/sub\n")
    assert own == {
        "memory": "/user/agent",
        "cpu": "/user",
        "cpuacct": "/user",
        "": "/agent.scope/sub",
    }
    assert cgroup_dir(mounts[0], own["memory"]) == Path("/sys/fs/cgroup/memory/user/agent")
    # A namespaced mount (root /agent.scope) is relative to its root.
    assert cgroup_dir(mounts[3], own[""]) == Path("/sys/fs/cgroup/unified/sub")


@pytest.mark.needs_root
def test_detect_places_container_cgroups_under_the_agents_own() -> None:
    version = _cgroups_or_skip()
    driver = detect(version)
    assert driver.memory_parent.name == "raftsman" and driver.memory_parent.is_dir()
    assert not any(p.name.startswith("probe-") for p in driver.memory_parent.iterdir())
    if version is Enforcement.CGROUP_V1:
        own = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
        mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        memory_mount = next(m for m in mounts if m.fstype == "cgroup" and "memory" in m.options)
        assert driver.memory_parent == cgroup_dir(memory_mount, own["memory"]) / "raftsman"


def test_detect_explains_why_nothing_is_usable(tmp_path: Path) -> None:
    with pytest.raises(
        CgroupUnavailable, match="cgroup v2: no cgroup2 mount; cgroup v1: no cgroup v1 memory"
    ):
        detect(mountinfo="", own_cgroup="0::/\n")


def test_the_default_is_the_best_enforcement_available(tmp_path: Path) -> None:
    try:
        expected = detect().version
    except CgroupUnavailable:
        expected = Enforcement.WATCHDOG
    assert ProcessRuntime(state_dir=tmp_path / "c").enforcement is expected
