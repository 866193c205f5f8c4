"""``raftsman node-agent`` as a real process, SIGKILLed and restarted: its pods live on.

The containers run under shims in sessions of their own, so killing the agent's whole
process group leaves them running; the restarted agent re-adopts them from its data
directory (same pid, same container id, same restart count) and applies the restart
policy to a container that died while no agent ran.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from actors.client import ApiClient
from node_agent.runtime.process import ProcessRuntime
from proto import rpc
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    container,
    get_pod,
    gone,
    host_path_volume,
    in_phase,
    node_name,
    poll,
)
from tests.support import processes


@contextmanager
def agent_process(
    name: str, server: rpc.Server, data_dir: Path, log: Path
) -> Iterator[processes.Process]:
    argv = [
        sys.executable,
        "-m",
        "cli.main",
        "node-agent",
        f"--name={name}",
        f"--server={server.address}",
        "--runtime=process",
        f"--data-dir={data_dir}",
        "--lease-period=1",
        "--node-status-update-frequency=1",
        "--max-backoff=1",
    ]
    with processes.running(argv, log_path=log) as process:
        yield process


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_sigkilled_agent_readopts_its_running_pods(
    api: ApiClient,
    server: rpc.Server,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    name = node_name()
    data_dir = tmp_path / "node"  # process_runtime cleans up its containers
    out = tmp_path / "out"
    steady = bound_pod("steady", ns, name, "echo $$$$ > out/steady; exec sleep infinity")
    host_path_volume(steady, "out", out, "/out")
    victim = bound_pod("victim", ns, name, "echo $$$$ > out/victim; exec sleep infinity")
    host_path_volume(victim, "out", out, "/out")

    with agent_process(name, server, data_dir, tmp_path / "agent-1.log") as agent:
        await api.create(steady)
        await api.create(victim)
        before = await poll(lambda: in_phase(api, ns, "steady"), timeout=30)
        await poll(lambda: in_phase(api, ns, "victim"), timeout=30)
        await poll(lambda: (out / "steady").exists() and (out / "victim").exists())
        agent.kill()  # SIGKILL to the agent's whole process group
        assert not agent.alive

    steady_pid = int((out / "steady").read_text())
    victim_pid = int((out / "victim").read_text())
    assert alive(steady_pid) and alive(victim_pid)
    os.kill(victim_pid, signal.SIGKILL)  # dies while no agent runs
    await poll(lambda: not alive(victim_pid))

    with agent_process(name, server, data_dir, tmp_path / "agent-2.log") as agent:

        async def victim_restarted() -> core_pb2.Pod | None:
            pod = await in_phase(api, ns, "victim")
            return pod if container(pod).restart_count == 1 else None

        restarted = await poll(victim_restarted, timeout=30)
        last = container(restarted).last_state.terminated
        assert (last.exit_code, last.reason) == (137, "Error")
        after = await get_pod(api, ns, "steady")
        assert alive(steady_pid) and int((out / "steady").read_text()) == steady_pid
        assert container(after).container_id == container(before).container_id
        assert container(after).restart_count == 0
        assert after is not None and after.status.pod_ip == before.status.pod_ip
        assert agent.alive, agent.log_text()

        # The restarted agent still finishes deletions.
        await api.delete(core_pb2.Pod, "steady", namespace=ns, grace_period_seconds=2)
        await poll(lambda: gone(api, ns, "steady"), timeout=30)
        assert not alive(steady_pid)
