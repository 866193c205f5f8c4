"""The node agent's gRPC API over real gRPC, the real process runtime and a fake lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from node_agent.agent.lookup import ContainerRef
from node_agent.runtime.base import ContainerId
from node_agent.runtime.process import ProcessRuntime
from proto import rpc
from proto.node import node_agent_pb2 as pb
from proto.node import node_agent_pb2_grpc
from tests.node_agent.agent.fake_agent import FakeLookup, RunningAgent, running_agent
from tests.support.processes import async_wait_for

NODE = "n1"


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    """The API served on a free port, with a stub of it."""
    async with running_agent(tmp_path, node_name=NODE) as running:
        async with rpc.connect(running.server.address) as channel:
            yield Agent(running, channel.stub(node_agent_pb2_grpc.NodeAgentStub))


@dataclass
class Agent:
    running: RunningAgent
    stub: Any

    @property
    def lookup(self) -> FakeLookup:
        return self.running.lookup

    @property
    def runtime(self) -> ProcessRuntime:
        return self.running.runtime


def _write_log(path: Path, lines: list[tuple[datetime, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for when, stream, text in lines:
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
            f.write(f"{stamp} {stream} F {text}\n")


async def _logs(agent: Agent, **fields: object) -> bytes:
    request = pb.LogsRequest(namespace="default", pod="web-1", **fields)  # type: ignore[arg-type]
    out = b""
    async with agent.stub.Logs(request) as stream:
        async for chunk in stream:
            out += chunk.data
    return out


async def _start(agent: Agent, container: str, argv: list[str], **kw: object) -> ContainerRef:
    return await agent.running.start_container("default", "web-1", container, argv, **kw)


# ------------------------------------------------------------------------------ logs


async def test_logs_tail_timestamps_since_limit(agent: Agent, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    log = tmp_path / "static" / "0.log"
    _write_log(
        log,
        [
            (now - timedelta(hours=2), "stdout", "old one"),
            (now - timedelta(hours=1), "stderr", "old two"),
            (now - timedelta(seconds=5), "stdout", "recent three"),
            (now, "stdout", "now four"),
        ],
    )
    agent.lookup.add("default", "web-1", "app", ContainerRef(ContainerId("c0"), log, running=False))
    assert await _logs(agent) == b"old one\nold two\nrecent three\nnow four\n"
    assert await _logs(agent, container="app", tail_lines=2) == b"recent three\nnow four\n"
    assert await _logs(agent, tail_lines=0) == b""
    assert await _logs(agent, since_seconds=60) == b"recent three\nnow four\n"
    since = (now - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    assert await _logs(agent, since_time=since) == b"old two\nrecent three\nnow four\n"
    assert await _logs(agent, limit_bytes=12) == b"old one\nold "
    stamped = (await _logs(agent, tail_lines=1, timestamps=True)).decode()
    stamp, _, text = stamped.partition(" ")
    assert text == "now four\n"
    assert stamp.endswith("123Z") and datetime.fromisoformat(stamp[:26]) == now.replace(tzinfo=None)


async def test_logs_previous_instance(agent: Agent, tmp_path: Path) -> None:
    first, second = tmp_path / "l" / "0.log", tmp_path / "l" / "1.log"
    _write_log(first, [(datetime.now(UTC), "stdout", "before the crash")])
    _write_log(second, [(datetime.now(UTC), "stdout", "after the restart")])
    agent.lookup.add(
        "default", "web-1", "app", ContainerRef(ContainerId("c0"), first, running=False)
    )
    with pytest.raises(
        rpc.FailedPrecondition, match='previous terminated container "app" in pod "web-1" not found'
    ):
        await _logs(agent, previous=True)
    agent.lookup.add(
        "default", "web-1", "app", ContainerRef(ContainerId("c1"), second, running=False)
    )
    assert await _logs(agent, previous=True) == b"before the crash\n"
    assert await _logs(agent) == b"after the restart\n"


async def test_logs_errors_are_specific(agent: Agent) -> None:
    with pytest.raises(rpc.NotFound, match=r'pod "web-1" is not on this node n1'):
        await _logs(agent)
    agent.lookup.add("default", "web-1", "app", ContainerRef(None, None, running=False))
    agent.lookup.add("default", "web-1", "sidecar", ContainerRef(None, None, running=False))
    with pytest.raises(
        rpc.FailedPrecondition, match='container "app" in pod "web-1" is waiting to start'
    ):
        await _logs(agent)
    with pytest.raises(
        rpc.NotFound,
        match=r'container "db" is not valid for pod "web-1"; choose one of: \[app sidecar\]',
    ):
        await _logs(agent, container="db")
    with pytest.raises(rpc.InvalidArgument, match="tail_lines must be >= 0"):
        await _logs(agent, tail_lines=-2)
    with pytest.raises(rpc.InvalidArgument, match="this node agent serves node n1, not n2"):
        await _logs(agent, node="n2")
    with pytest.raises(rpc.InvalidArgument, match="since_time must be an RFC 3339 time"):
        await _logs(agent, since_time="yesterday")


async def test_follow_streams_until_the_container_exits_across_rotation(
    agent: Agent,
) -> None:
    # 60 lines of ~40 bytes through 1 KiB log files: about 3 rotations while we follow.
    script = 'i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo "line $i padded to be forty bytes long"; sleep 0.01; done'
    await _start(agent, "app", ["sh", "-c", f"sleep 0.3; {script}"])
    with trio.fail_after(20):
        out = await _logs(agent, follow=True)
    assert out.decode().splitlines() == [
        f"line {i} padded to be forty bytes long" for i in range(1, 61)
    ]


async def test_follow_with_tail_starts_from_the_last_lines(
    agent: Agent,
) -> None:
    ref = await _start(agent, "app", ["sh", "-c", "echo a; echo b; echo c; sleep 60"])
    log_path = ref.log_path
    assert log_path is not None

    def written() -> bool:
        return log_path.exists() and b"c\n" in log_path.read_bytes()

    await async_wait_for(written, timeout=10)
    received: list[bytes] = []
    async with trio.open_nursery() as nursery:
        request = pb.LogsRequest(namespace="default", pod="web-1", follow=True, tail_lines=1)

        async def follow() -> None:
            async with agent.stub.Logs(request) as stream:
                async for chunk in stream:
                    received.append(chunk.data)

        nursery.start_soon(follow)
        await async_wait_for(lambda: received == [b"c\n"], timeout=10)
        # The stream stays open while the container runs and ends when it exits.
        assert ref.container_id is not None
        await agent.runtime.stop(ref.container_id, grace=0)
    assert b"".join(received) == b"c\n"


# ------------------------------------------------------------------------------ exec


async def _exec(
    agent: Agent, start: pb.ExecStart, stdin: list[bytes] | None = None, *, close: bool = True
) -> tuple[bytes, bytes, int | None]:
    out, err, code = b"", b"", None
    async with agent.stub.Exec() as stream:
        await stream.send(pb.ExecRequest(start=start))
        for chunk in stdin or []:
            await stream.send(pb.ExecRequest(stdin=chunk))
        if close:
            await stream.done_writing()
        async for response in stream:
            out += response.stdout
            err += response.stderr
            if response.HasField("exit_code"):
                code = response.exit_code
    return out, err, code


async def test_exec_streams_stdin_stdout_stderr_and_exit_code(agent: Agent) -> None:
    await _start(agent, "app", ["sleep", "60"], env={"PATH": "/usr/bin:/bin", "GREETING": "hi"})
    start = pb.ExecStart(
        namespace="default",
        pod="web-1",
        command=["sh", "-c", 'echo "$GREETING"; cat; echo oops >&2; exit 3'],
        stdin=True,
    )
    with trio.fail_after(20):
        out, err, code = await _exec(agent, start, [b"hello ", b"world\n"])
    assert (out, err, code) == (b"hi\nhello world\n", b"oops\n", 3)


async def test_exec_returns_when_the_command_exits_although_stdin_stays_open(
    agent: Agent,
) -> None:
    await _start(agent, "app", ["sleep", "60"])
    start = pb.ExecStart(pod="web-1", command=["sh", "-c", "echo done"], stdin=True)
    with trio.fail_after(5):
        assert await _exec(agent, start, close=False) == (b"done\n", b"", 0)


async def test_exec_in_a_container_that_is_not_running(agent: Agent) -> None:
    ref = await _start(agent, "app", ["true"])
    assert ref.container_id is not None
    await agent.runtime.wait(ref.container_id)
    start = pb.ExecStart(pod="web-1", command=["ls"])
    # The lookup still believes it runs: the runtime has the last word.
    with pytest.raises(
        rpc.FailedPrecondition,
        match='cannot exec in container "app" of pod "web-1": it is not running',
    ):
        await _exec(agent, start)
    agent.lookup.pods_[("default", "web-1")]["app"].append(
        ContainerRef(ref.container_id, ref.log_path, running=False)
    )
    with pytest.raises(rpc.FailedPrecondition, match="it is not running"):
        await _exec(agent, start)


async def test_exec_bad_requests(agent: Agent) -> None:
    await _start(agent, "app", ["sleep", "60"])
    with pytest.raises(rpc.InvalidArgument, match="tty"):
        await _exec(agent, pb.ExecStart(pod="web-1", command=["sh"], tty=True))
    with pytest.raises(rpc.InvalidArgument, match="exec needs a command"):
        await _exec(agent, pb.ExecStart(pod="web-1"))
    with pytest.raises(
        rpc.NotFound, match=r'container "x" is not valid for pod "web-1"; choose one of: \[app\]'
    ):
        await _exec(agent, pb.ExecStart(pod="web-1", container="x", command=["ls"]))
    with pytest.raises(rpc.InvalidArgument, match="first Exec message"):
        async with agent.stub.Exec() as stream:
            await stream.send(pb.ExecRequest(stdin=b"x"))
            await stream.done_writing()
            async for _ in stream:
                pass
    out, _, code = await _exec(agent, pb.ExecStart(pod="web-1", command=["no-such-command"]))
    assert code is not None and code != 0


# ------------------------------------------------------------------------------ stats


async def test_stats_reports_cpu_rates_and_memory(agent: Agent) -> None:
    await _start(agent, "busy", ["sh", "-c", "while :; do :; done"])
    await _start(agent, "idle", ["sleep", "60"])
    with trio.fail_after(20):
        first = await agent.stub.Stats(pb.StatsRequest())
        second = await agent.stub.Stats(pb.StatsRequest(namespace="default", node=NODE))
    for response in (first, second):
        assert response.node == NODE
        assert response.window_seconds >= 0.5
        [pod] = response.pods
        usage = {c.name: c for c in pod.containers}
        assert usage["busy"].cpu_millicores > 200, response
        assert usage["idle"].cpu_millicores < 100, response
        assert all(c.memory_bytes > 0 for c in pod.containers)
        assert pod.cpu_millicores == sum(c.cpu_millicores for c in pod.containers)
        assert pod.memory_bytes == sum(c.memory_bytes for c in pod.containers)
        assert response.memory_bytes > pod.memory_bytes  # the agent itself counts too
    other = await agent.stub.Stats(pb.StatsRequest(namespace="other"))
    assert list(other.pods) == []
