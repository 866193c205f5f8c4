"""Target resolution and signalling against a hand-written state file and real processes.

The safety property: a fault lands on the process the state file recorded -- same pid
*and* same start time -- or on nothing. A pid whose start time differs (a recycled pid)
is never signalled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.cluster import Cluster, Pick, ProcessGone, Selector, TargetNotFound
from chaos.faults import Kill, Pause
from cli.launcher import pids
from cli.launcher.layout import Layout
from cli.launcher.state import ClusterState, ProcessRecord, SupervisorRecord, save
from tests.support.processes import async_wait_for

pytestmark = pytest.mark.chaos


def _state(pid: int) -> str:
    """The process's state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
        )
        for _ in range(2)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _cluster(
    root: Path, procs: list[subprocess.Popen[bytes]], *, wrong_start: bool = False
) -> Cluster:
    layout = Layout.at(root)
    layout.create()
    records = []
    for i, proc in enumerate(procs):
        start = pids.start_ticks(proc.pid)
        assert start is not None
        records.append(
            ProcessRecord(
                role="apiserver",
                name=f"apiserver-{i}",
                ports={"api": 1},
                log=str(layout.log_file(f"apiserver-{i}")),
                pid=proc.pid,
                pid_start=start + 1 if wrong_start and i == 0 else start,
            )
        )
    state = ClusterState(
        name="t",
        dir=str(layout.root),
        supervisor=SupervisorRecord(log=str(layout.supervisor_log)),
        processes=records,
    )
    save(layout.state_file, state)
    return Cluster(root)


async def test_select_by_name_and_pick(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    cluster = _cluster(tmp_path, sleepers)
    [one] = await cluster.select(Selector(role="apiserver", name="apiserver-1"))
    assert one.pid == sleepers[1].pid
    everyone = await cluster.select(Selector(role="apiserver", pick=Pick.ALL))
    assert sorted(p.name for p in everyone) == ["apiserver-0", "apiserver-1"]
    with pytest.raises(TargetNotFound, match="no process named 'apiserver-7'"):
        await cluster.select(Selector(role="apiserver", name="apiserver-7"))
    with pytest.raises(TargetNotFound, match="apiserver-0 is a apiserver, not a store"):
        await cluster.select(Selector(role="store", name="apiserver-0"))
    with pytest.raises(TargetNotFound, match="no store process is running"):
        await cluster.select(Selector(role="store", pick=Pick.LEADER))


async def test_a_recycled_pid_is_never_signalled(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    cluster = _cluster(tmp_path, sleepers, wrong_start=True)
    # The record's start time does not match: the process counts as not running ...
    with pytest.raises(TargetNotFound, match="apiserver-0 is not running"):
        cluster.process("apiserver-0")
    assert [p.name for p in cluster.processes()] == ["apiserver-1"]
    # ... and a Proc resolved earlier is not signalled once its start time differs.
    [proc] = await cluster.select(Selector(role="apiserver", name="apiserver-1"))
    stale = type(proc)(
        role=proc.role, name=proc.name, pid=proc.pid, pid_start=(proc.pid_start or 0) + 1
    )
    with pytest.raises(ProcessGone, match="is gone; not signalling it"):
        cluster.signal(stale, signal.SIGKILL)
    assert sleepers[1].poll() is None


async def test_kill_and_pause_reach_the_process(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    cluster = _cluster(tmp_path, sleepers)
    [paused] = await cluster.select(Selector(role="apiserver", name="apiserver-0"))
    heal = await Pause(duration=0).start(cluster, [paused])
    assert heal is not None
    await async_wait_for(lambda: _state(paused.pid) == "T", timeout=10, message="stopped")
    await heal()
    await async_wait_for(lambda: _state(paused.pid) != "T", timeout=10, message="resumed")

    [victim] = await cluster.select(Selector(role="apiserver", name="apiserver-1"))
    await Kill().start(cluster, [victim])
    assert sleepers[1].wait(timeout=10) == -signal.SIGKILL
    assert sleepers[0].poll() is None
