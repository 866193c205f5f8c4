"""The sim runtime on trio's fake clock: exits as the spec says, stops, scale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerNotRunningError,
    ContainerRunningError,
    ContainerRuntime,
    ContainerSpec,
    ContainerState,
    Enforcement,
    ExecResult,
    StartError,
    exec_capture,
)
from node_agent.runtime.process import ProcessRuntime
from node_agent.runtime.sim import Behaviour, SimRuntime, behaviour_of


def spec(name: str, argv: list[str], *, pod: str = "uid-1", **fields: object) -> ContainerSpec:
    values: dict[str, object] = {
        "pod_uid": pod,
        "pod_namespace": "default",
        "pod_name": "pod",
        "container_name": name,
        "attempt": 0,
        "argv": tuple(argv),
        "root_dir": Path("/nonexistent/root"),
        "log_path": Path("/nonexistent/0.log"),
    }
    values.update(fields)
    return ContainerSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["sleep", "2.5"], {}, Behaviour(2.5, 0)),
        (["/bin/sleep", "3s"], {}, Behaviour(3.0, 0)),
        (["sleep", "infinity"], {}, Behaviour(None)),
        (["true"], {}, Behaviour(0.0, 0)),
        (["false"], {}, Behaviour(0.0, 1)),
        (["sh", "-c", "exit 3"], {}, Behaviour(0.0, 3)),
        (["sh", "-c", "echo hi; sleep 2; exit 4"], {}, Behaviour(2.0, 4)),
        (["/bin/bash", "-c", "sleep 1 && false"], {}, Behaviour(1.0, 1)),
        (["sh", "-c", "false && sleep 100"], {}, Behaviour(0.0, 1)),
        (["sh", "-c", "false || exit 5"], {}, Behaviour(0.0, 5)),
        (["busybox", "sh", "-c", "sleep 1\nexit 2"], {}, Behaviour(1.0, 2)),
        (["sh", "-c", "while true; do sleep 1; done"], {}, Behaviour(None)),
        (["python", "-m", "http.server"], {}, Behaviour(None)),
        (["sh", "-c", "exit 3"], {"SIM_EXIT_AFTER": "7", "SIM_EXIT_CODE": "9"}, Behaviour(7.0, 9)),
        (["python", "-m", "http.server"], {"SIM_EXIT_CODE": "2"}, Behaviour(0.0, 2)),
        (["sleep", "1"], {"SIM_EXIT_AFTER": "infinity"}, Behaviour(None, 0)),
    ],
)
def test_behaviour_convention(argv: list[str], env: dict[str, str], expected: Behaviour) -> None:
    assert behaviour_of(argv, env) == expected


def test_bad_sim_settings_are_start_errors() -> None:
    with pytest.raises(
        StartError, match="SIM_EXIT_AFTER must be a number of seconds >= 0, got 'soon'"
    ):
        behaviour_of(["true"], {"SIM_EXIT_AFTER": "soon"})
    with pytest.raises(StartError, match="SIM_EXIT_CODE must be an integer, got 'x'"):
        behaviour_of(["true"], {"SIM_EXIT_CODE": "x"})


async def test_container_exits_after_its_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runtime = SimRuntime()
    begin = trio.current_time()
    container_id = await runtime.start(spec("job", ["sh", "-c", "sleep 30; exit 3"]))
    status = await runtime.status(container_id)
    assert status.state is ContainerState.RUNNING and status.started_at is not None
    final = await runtime.wait(container_id)
    assert trio.current_time() - begin == pytest.approx(30)
    assert (final.exit_code, final.reason) == (3, "Error")
    assert final.finished_at is not None
    assert (final.finished_at - status.started_at).total_seconds() == pytest.approx(30)
    ok = await runtime.wait(await runtime.start(spec("ok", ["true"])))
    assert (ok.exit_code, ok.reason) == (0, "Completed")


async def test_status_reflects_an_exit_without_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(spec("job", ["sleep", "5"]))
    await trio.sleep(4.9)
    assert (await runtime.status(container_id)).running
    await trio.sleep(0.2)
    status = await runtime.status(container_id)
    assert status.state is ContainerState.EXITED and status.exit_code == 0


async def test_stop_terminates_at_once(autojump_clock: trio.testing.MockClock) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(spec("server", ["python", "-m", "http.server"]))
    await trio.sleep(100)
    begin = trio.current_time()
    status = await runtime.stop(container_id, grace=30)
    assert trio.current_time() == begin
    assert (status.exit_code, status.signal) == (143, 15)
    assert await runtime.stop(container_id, grace=30) == status


async def test_a_container_ignoring_sigterm_is_killed_after_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(
        spec("stubborn", ["sleep", "infinity"], env={"SIM_IGNORE_TERM": "1"})
    )
    begin = trio.current_time()
    status = await runtime.stop(container_id, grace=30)
    assert trio.current_time() - begin == pytest.approx(30)
    assert (status.exit_code, status.signal) == (137, 9)
    # One that ends on its own during the grace period keeps its own exit.
    quick = await runtime.start(spec("quick", ["sleep", "10"], env={"SIM_IGNORE_TERM": "1"}))
    assert (await runtime.stop(quick, grace=30)).exit_code == 0


async def test_waiters_wake_on_stop(autojump_clock: trio.testing.MockClock) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(spec("server", ["sleep", "infinity"]))
    codes: list[int | None] = []

    async def waiter() -> None:
        codes.append((await runtime.wait(container_id)).exit_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.sleep(5)
        await runtime.stop(container_id, grace=1)
    assert codes == [143, 143]


async def test_lifecycle_errors_match_the_process_runtime(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(spec("app", ["sleep", "infinity"]))
    with pytest.raises(ContainerExistsError):
        await runtime.start(spec("app", ["sleep", "infinity"]))
    with pytest.raises(ContainerRunningError):
        await runtime.remove(container_id)
    with pytest.raises(StartError, match="image pull simulated"):
        await runtime.start(
            spec("broken", ["true"], env={"SIM_START_ERROR": "image pull simulated"})
        )
    assert (await exec_capture(runtime, container_id, ["sh", "-c", "exit 2"])).exit_code == 2
    assert (await exec_capture(runtime, container_id, ["cat", "/etc/hosts"])).exit_code == 0
    await runtime.stop(container_id, grace=0)
    with pytest.raises(ContainerNotRunningError):
        await runtime.exec(container_id, ["true"])
    await runtime.remove(container_id)
    assert await runtime.containers() == []
    # Removed: the same attempt may start again.
    await runtime.start(spec("app", ["sleep", "infinity"]))


async def test_stats_follow_the_simulated_usage(autojump_clock: trio.testing.MockClock) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(
        spec(
            "busy",
            ["sleep", "infinity"],
            env={"SIM_CPU_MILLIS": "250", "SIM_MEMORY_BYTES": "1048576"},
        )
    )
    await trio.sleep(40)
    stats = await runtime.stats(container_id)
    assert stats.cpu_seconds == pytest.approx(10)
    assert stats.memory_bytes == 1048576


async def test_hundred_nodes_with_ten_pods_each(autojump_clock: trio.testing.MockClock) -> None:
    nodes = [SimRuntime() for _ in range(100)]
    begin = trio.current_time()
    started = {}
    for n, node in enumerate(nodes):
        for p in range(10):
            argv = ["sh", "-c", f"sleep {p + 1}; exit {p}"] if p % 2 else ["sleep", "infinity"]
            started[(n, p)] = await node.start(spec("main", argv, pod=f"node{n}-pod{p}"))
    results: dict[tuple[int, int], int | None] = {}

    async def watch(n: int, p: int) -> None:
        results[(n, p)] = (await nodes[n].wait(started[(n, p)])).exit_code

    async with trio.open_nursery() as nursery:
        for key in started:
            if key[1] % 2:
                nursery.start_soon(watch, *key)
    assert trio.current_time() - begin == pytest.approx(10)
    assert results == {(n, p): p for n in range(100) for p in range(10) if p % 2}
    running = 0
    for node in nodes:
        running += sum(1 for info in await node.containers() if info.status.running)
    assert running == 500


def test_both_runtimes_satisfy_the_protocol(tmp_path: Path) -> None:
    # mypy checks the assignment; the names are what container ids are prefixed with.
    runtimes: list[ContainerRuntime] = [
        SimRuntime(),
        ProcessRuntime(state_dir=tmp_path / "containers", enforcement=Enforcement.NONE),
    ]
    assert [(r.name, r.enforcement) for r in runtimes] == [
        ("sim", Enforcement.NONE),
        ("process", Enforcement.NONE),
    ]


async def test_exec_cat_echoes_stdin_as_it_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(spec("app", ["sleep", "infinity"]))
    send, receive = trio.open_memory_channel[bytes](10)
    echoed: list[tuple[float, bytes]] = []
    code: list[int] = []

    async def out(chunk: bytes) -> None:
        echoed.append((trio.current_time(), chunk))

    async def stdin() -> AsyncIterator[bytes]:
        async for chunk in receive:
            yield chunk

    async def run_cat(argv: list[str]) -> None:
        code.append(await runtime.exec(container_id, argv, stdin=stdin(), stdout=out))

    for argv in (["cat"], ["sh", "-c", "cat"], ["busybox", "cat", "-"]):
        echoed.clear()
        code.clear()
        send, receive = trio.open_memory_channel[bytes](10)
        begin = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_cat, argv)
            await send.send(b"hello\n")
            await trio.sleep(5)
            # Echoed at once, while stdin is still open and the command still running.
            assert echoed == [(begin, b"hello\n")] and code == []
            await send.send(b"world\n")
            await trio.sleep(1)
            await send.aclose()
        assert echoed == [(begin, b"hello\n"), (begin + 5, b"world\n")]
        assert code == [0]
    # Without stdin, cat reads /dev/null: it ends at once.
    assert await exec_capture(runtime, container_id, ["cat"]) == ExecResult(0, b"", b"")


async def test_exec_does_not_wait_for_stdin_to_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runtime = SimRuntime()
    container_id = await runtime.start(spec("app", ["sleep", "infinity"]))
    read: list[bytes] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            read.append(b"x")
            yield b"x"
            await trio.sleep(0.7)

    begin = trio.current_time()
    code = await runtime.exec(container_id, ["sh", "-c", "sleep 3; exit 4"], stdin=endless())
    assert (code, trio.current_time() - begin) == (4, 3)
    assert len(read) == 5  # at 0, 0.7 ... 2.8 while the command ran, then no more
    assert await runtime.exec(container_id, ["python", "server.py"], stdin=endless()) == 0
    # Files given to cat are not read (no file system): no output, exit 0, as before.
    assert await exec_capture(runtime, container_id, ["cat", "/etc/hosts"]) == ExecResult(
        0, b"", b""
    )
