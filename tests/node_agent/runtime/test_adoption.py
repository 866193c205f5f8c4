"""Containers outlive the agent: a new runtime on the same state directory adopts them."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from node_agent.runtime import logs, procfs
from node_agent.runtime.base import ContainerState
from node_agent.runtime.process import ProcessRuntime
from tests.node_agent.runtime.conftest import SpecFactory
from tests.support.processes import async_wait_for, running, wait_for

REPO = Path(__file__).resolve().parents[3]


async def test_containers_outlive_a_killed_agent_and_are_adopted(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    state_dir = runtime.state_dir  # the fixture cleans up whatever is left in it
    root, log = tmp_path / "root", tmp_path / "logs" / "0.log"
    argv = ["sh", "-c", "echo up; while true; do echo tick; sleep 0.05; done"]
    program = [
        sys.executable,
        "-m",
        "tests.node_agent.runtime.agent_program",
        str(state_dir),
        str(root),
        str(log),
        *argv,
    ]
    with running(program, log_path=tmp_path / "agent.log", cwd=REPO) as agent:
        line = wait_for(
            lambda: next(
                (x for x in agent.log_text().splitlines() if x.startswith("started ")), None
            ),
            timeout=20,
            message=lambda: f"the agent to start its container; log:\n{agent.log_text()}",
        )
        assert line is not None
        container_id = line.split()[1]
        agent.kill()  # SIGKILL, as a crashing agent

    adopted = ProcessRuntime(state_dir=state_dir)
    [info] = await adopted.containers()
    assert info.id == container_id
    assert info.status.state is ContainerState.RUNNING
    assert info.spec.labels == {"started-by": "agent-program"}
    assert info.spec.argv == tuple(argv)
    pid = info.status.pid
    assert pid is not None
    stat = procfs.read_stat(pid)
    assert stat is not None and stat.pgid == pid  # still the same process, leading its group

    # Its log keeps growing: the shim, not the dead agent, owns the output.
    count = len(logs.read_log(log))
    await async_wait_for(lambda: _more_lines(log, count), timeout=10, message="more log lines")

    os.kill(pid, signal.SIGKILL)
    with trio.fail_after(10):
        status = await adopted.wait(info.id)
    assert (status.exit_code, status.signal, status.reason) == (137, 9, "Error")
    assert status.finished_at is not None and status.started_at == info.status.started_at


async def _more_lines(log: Path, count: int) -> bool:
    return len(logs.read_log(log)) > count


async def test_exit_while_no_agent_runs_is_reported_on_adoption(
    tmp_path: Path, runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        "later", ["sh", "-c", "while [ ! -e go ]; do sleep 0.02; done; echo leaving; exit 3"]
    )
    container_id = await runtime.start(spec)
    state_dir = runtime.state_dir
    del runtime  # the agent is gone; nobody watches the container

    (spec.root_dir / "go").touch()
    exit_file = state_dir / container_id / "exit.json"
    await async_wait_for(_exists(exit_file), timeout=10, message="the shim to record the exit")

    adopted = ProcessRuntime(state_dir=state_dir)
    [info] = await adopted.containers()
    assert info.status.state is ContainerState.EXITED
    assert (info.status.exit_code, info.status.reason) == (3, "Error")
    assert info.status.finished_at is not None
    assert await adopted.wait(container_id) == info.status
    assert [r.content for r in logs.read_log(spec.log_path)] == [b"leaving"]


def _exists(path: Path) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return path.exists()  # noqa: ASYNC240 - a local file

    return check


async def test_a_dead_shim_is_reported_and_its_container_killed(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("orphan", ["sleep", "1000"])
    container_id = await runtime.start(spec)
    started = json.loads((runtime.state_dir / container_id / "started.json").read_text())
    os.kill(started["shim_pid"], signal.SIGKILL)
    with trio.fail_after(10):
        status = await runtime.wait(container_id)
    assert (status.exit_code, status.reason) == (137, "ContainerStatusUnknown")
    assert f"shim pid {started['shim_pid']}" in status.message
    await async_wait_for(
        lambda: _dead(started["pid"], started["pid_start"]),
        timeout=5,
        message="the container to be killed",
    )


async def _dead(pid: int, start: int) -> bool:
    return not procfs.is_running(pid, start)


async def test_a_reused_pid_is_not_mistaken_for_the_shim(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    container_id = await runtime.start(make_spec("ghost", ["sleep", "1000"]))
    started_file = runtime.state_dir / container_id / "started.json"
    started = json.loads(started_file.read_text())
    # Pretend the recorded shim pid now belongs to another process (this test process).
    started["shim_pid"] = os.getpid()
    started_file.write_text(json.dumps(started))
    fresh = ProcessRuntime(state_dir=runtime.state_dir)
    status = await fresh.status(container_id)
    assert status.state is ContainerState.EXITED
    assert status.reason == "ContainerStatusUnknown"


async def test_a_container_still_starting_is_not_taken_for_a_lost_start(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    # The moment between the shim's spawn and its started.json, seen by another runtime
    # on the same directory (an agent killed mid-start, then `raftsman down` or the
    # restarted agent): held here by moving started.json away and back.
    container_id = await runtime.start(make_spec("booting", ["sleep", "1000"]))
    directory = runtime.state_dir / container_id
    assert json.loads((directory / "shim.json").read_text())["pid"] > 0
    started_file = directory / "started.json"
    held = directory / "started.held"
    started_file.rename(held)
    fresh = ProcessRuntime(state_dir=runtime.state_dir)
    async with trio.open_nursery() as nursery:

        async def shim_writes_it_late() -> None:
            await trio.sleep(0.3)
            held.rename(started_file)

        nursery.start_soon(shim_writes_it_late)
        [info] = await fresh.containers()
    assert info.status.state is ContainerState.RUNNING
    assert not (directory / "exit.json").exists()
    stopped = await fresh.stop(container_id, grace=1)
    assert stopped.state is ContainerState.EXITED and stopped.signal == signal.SIGTERM
