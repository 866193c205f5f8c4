"""The process runtime with real processes: start, exit status, stop, groups, exec, errors."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from node_agent.runtime import logs, procfs
from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerNotFoundError,
    ContainerNotRunningError,
    ContainerRunningError,
    ContainerState,
    StartError,
    WorkingDirError,
    exec_capture,
)
from node_agent.runtime.process import ProcessRuntime
from tests.node_agent.runtime.conftest import SpecFactory
from tests.support.processes import async_wait_for


async def _log_has(path: Path, text: bytes) -> bool:
    return any(text in r.content for r in logs.read_log(path))


async def test_container_writes_a_file_and_its_exit_code_is_reported(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("writer", ["sh", "-c", "echo made > out.txt; exit 3"])
    container_id = await runtime.start(spec)
    status = await runtime.wait(container_id)
    assert status.state is ContainerState.EXITED
    assert (status.exit_code, status.signal, status.reason) == (3, 0, "Error")
    assert status.started_at is not None and status.finished_at is not None
    assert status.started_at <= status.finished_at
    # The working directory defaults to the container's root directory.
    assert (spec.root_dir / "out.txt").read_text() == "made\n"
    assert await runtime.status(container_id) == status


async def test_exit_zero_is_completed(runtime: ProcessRuntime, make_spec: SpecFactory) -> None:
    container_id = await runtime.start(make_spec("ok", ["true"]))
    status = await runtime.wait(container_id)
    assert (status.exit_code, status.reason) == (0, "Completed")


async def test_wait_returns_promptly_after_the_exit(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("quick", ["sh", "-c", "while [ ! -e go ]; do sleep 0.01; done; exit 4"])
    container_id = await runtime.start(spec)
    noticed: list[datetime] = []

    async def waiter() -> None:
        status = await runtime.wait(container_id)
        noticed.append(datetime.now(UTC))
        assert status.exit_code == 4

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()  # the waiter is parked on the pidfd
        assert (await runtime.status(container_id)).running
        (spec.root_dir / "go").touch()
    finished_at = (await runtime.status(container_id)).finished_at
    assert finished_at is not None
    # Noticed through a pidfd as the shim exits, not by a slow poll.
    assert (noticed[0] - finished_at).total_seconds() < 0.25


async def test_stop_delivers_sigterm_to_a_container_that_traps_it(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        "trapper",
        [
            "sh",
            "-c",
            'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.05; done',
        ],
    )
    container_id = await runtime.start(spec)
    await async_wait_for(lambda: _log_has(spec.log_path, b"ready"), timeout=10, message="ready")
    started = trio.current_time()
    status = await runtime.stop(container_id, grace=10)
    assert trio.current_time() - started < 5
    assert (status.exit_code, status.signal) == (7, 0)
    assert await _log_has(spec.log_path, b"got-term")


async def test_stop_kills_a_container_that_ignores_sigterm_after_the_grace_period(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec(
        "stubborn", ["sh", "-c", 'trap "" TERM; echo ready; while true; do sleep 0.05; done']
    )
    container_id = await runtime.start(spec)
    await async_wait_for(lambda: _log_has(spec.log_path, b"ready"), timeout=10, message="ready")
    started = trio.current_time()
    status = await runtime.stop(container_id, grace=0.5)
    elapsed = trio.current_time() - started
    assert 0.5 <= elapsed < 5
    assert (status.exit_code, status.signal, status.reason) == (137, 9, "Error")
    assert "SIGKILL" in status.message


async def test_stop_reaches_every_process_of_the_group(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("parent", ["sh", "-c", "sleep 1000 & echo $! > child.pid; wait"])
    container_id = await runtime.start(spec)
    pid_file = spec.root_dir / "child.pid"
    await async_wait_for(lambda: _nonempty(pid_file), timeout=10, message="child.pid")
    child = int(pid_file.read_text())
    child_stat = procfs.read_stat(child)
    assert child_stat is not None
    await runtime.stop(container_id, grace=5)
    assert not procfs.is_running(child, child_stat.start_ticks)


async def test_leftover_processes_die_with_the_main_process(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("leaver", ["sh", "-c", "sleep 1000 & echo $! > child.pid; exit 0"])
    container_id = await runtime.start(spec)
    status = await runtime.wait(container_id)
    assert status.exit_code == 0
    child = int((spec.root_dir / "child.pid").read_text())
    await async_wait_for(lambda: _gone(child), timeout=5, message="the background child to die")


async def _nonempty(path: Path) -> bool:
    return path.exists() and path.read_text().strip() != ""  # noqa: ASYNC240 - tiny local file


async def _gone(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is None or stat.state == "Z"


async def test_exec_runs_in_the_containers_env_and_working_dir(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("app", ["sleep", "1000"], env={"PATH": "/usr/bin:/bin", "GREETING": "hello"})
    container_id = await runtime.start(spec)
    result = await exec_capture(
        runtime, container_id, ["sh", "-c", 'echo "$GREETING"; pwd; echo oops >&2; exit 4']
    )
    assert result.exit_code == 4
    assert result.stdout == f"hello\n{spec.root_dir}\n".encode()
    assert result.stderr == b"oops\n"
    echoed = await exec_capture(runtime, container_id, ["cat"], stdin=b"typed input")
    assert (echoed.exit_code, echoed.stdout) == (0, b"typed input")
    missing = await exec_capture(runtime, container_id, ["no-such-command-xyz"])
    assert missing.exit_code == 127
    assert b"executable file not found in $PATH" in missing.stderr


async def test_cancelling_exec_kills_the_command(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("host", ["sleep", "1000"])
    container_id = await runtime.start(spec)
    with trio.move_on_after(0.5):
        await runtime.exec(container_id, ["sh", "-c", "echo $$ > exec.pid; exec sleep 1000"])
    pid = int((spec.root_dir / "exec.pid").read_text())
    assert await _gone(pid)


async def test_exec_and_stats_need_a_running_container(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    container_id = await runtime.start(make_spec("done", ["true"]))
    await runtime.wait(container_id)
    with pytest.raises(ContainerNotRunningError):
        await runtime.exec(container_id, ["true"])
    with pytest.raises(ContainerNotRunningError):
        await runtime.stats(container_id)


async def test_stats_count_the_whole_group(runtime: ProcessRuntime, make_spec: SpecFactory) -> None:
    spec = make_spec("busy", ["sh", "-c", "sleep 1000 & sleep 1000 & echo ready; wait"])
    container_id = await runtime.start(spec)
    await async_wait_for(lambda: _log_has(spec.log_path, b"ready"), timeout=10, message="ready")
    stats = await runtime.stats(container_id)
    assert stats.processes == 3
    assert stats.memory_bytes > 0
    assert stats.cpu_seconds >= 0


async def test_missing_working_dir_is_a_typed_error(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    with pytest.raises(WorkingDirError, match='working directory "/no/such/dir".* does not exist'):
        await runtime.start(make_spec("lost", ["true"], working_dir="/no/such/dir"))
    assert await runtime.containers() == []


async def test_missing_executable_is_a_start_error(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    with pytest.raises(
        StartError, match=r'exec: "no-such-program": executable file not found in \$PATH'
    ):
        await runtime.start(make_spec("nothing", ["no-such-program"]))
    with pytest.raises(StartError, match='exec: "/no/such/file": no such file or directory'):
        await runtime.start(make_spec("nothing2", ["/no/such/file"]))
    assert await runtime.containers() == []


async def test_shim_reports_an_exec_failure_it_alone_can_see(
    runtime: ProcessRuntime, make_spec: SpecFactory, tmp_path: Path
) -> None:
    # Executable for the agent's pre-check, but not a valid program: only exec() can tell.
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x7fELF garbage")
    bogus.chmod(0o755)
    with pytest.raises(StartError, match=f'exec: "{bogus}": exec format error'):
        await runtime.start(make_spec("bogus", [str(bogus)]))
    assert await runtime.containers() == []


async def test_one_container_per_pod_container_and_attempt(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    first = await runtime.start(make_spec("web", ["sleep", "1000"]))
    with pytest.raises(ContainerExistsError, match=first):
        await runtime.start(make_spec("web", ["sleep", "1000"]))
    second = await runtime.start(make_spec("web", ["sleep", "1000"], attempt=1))
    assert second != first


async def test_remove_forgets_an_exited_container_but_keeps_its_log(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("gone", ["sh", "-c", "echo bye"])
    container_id = await runtime.start(spec)
    running = await runtime.start(make_spec("runner", ["sleep", "1000"]))
    with pytest.raises(ContainerRunningError):
        await runtime.remove(running)
    await runtime.wait(container_id)
    await runtime.remove(container_id)
    with pytest.raises(ContainerNotFoundError):
        await runtime.status(container_id)
    assert [r.content for r in logs.read_log(spec.log_path)] == [b"bye"]
    assert [info.id for info in await runtime.containers()] == [running]


async def test_stop_of_an_exited_container_returns_its_status(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    container_id = await runtime.start(make_spec("short", ["sh", "-c", "exit 2"]))
    status = await runtime.wait(container_id)
    assert await runtime.stop(container_id, grace=1) == status


async def test_signal_exit_reports_the_signal(
    runtime: ProcessRuntime, make_spec: SpecFactory
) -> None:
    spec = make_spec("victim", ["sh", "-c", "echo ready; exec sleep 1000"])
    container_id = await runtime.start(spec)
    await async_wait_for(lambda: _log_has(spec.log_path, b"ready"), timeout=10, message="ready")
    status = await runtime.status(container_id)
    assert status.pid is not None
    os.kill(status.pid, signal.SIGUSR1)
    final = await runtime.wait(container_id)
    assert (final.exit_code, final.signal, final.reason) == (
        128 + signal.SIGUSR1,
        signal.SIGUSR1,
        "Error",
    )
