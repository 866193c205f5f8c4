"""``raftsman logs``, ``exec`` and ``top`` as subprocesses, through a real API server.

The API server and a node agent API (real process runtime and service, fake lookup) run
in the test's trio loop; the CLI runs as ``python -m cli.main`` with ``trio.run_process``
so the loop keeps serving while it runs. HOME is a temporary directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, open_api_client
from cli.kubectl import printers
from cli.kubectl.durations import parse_duration
from cli.kubectl.logs import pod_name
from cli.kubectl.top import node_rows, pod_rows
from cli.main import main
from proto.apiserver import apiserver_pb2 as pb
from proto.k8s import kinds
from tests.node_agent.agent.fake_agent import RunningAgent, make_node, make_pod, published_agent
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Setup:
    api: ApiClient
    server: str
    home: Path
    agent: RunningAgent
    node: str
    ns: str

    async def run(
        self, *args: str, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "HOME": str(self.home), "RAFTSMAN_SERVER": self.server}
        env.pop("RAFTSMAN_CLUSTER", None)
        with trio.fail_after(60):
            return await trio.run_process(
                [sys.executable, "-m", "cli.main", *args],
                cwd=ROOT,
                env=env,
                stdin=stdin if stdin is not None else b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )


@pytest.fixture
async def setup(
    nursery: trio.Nursery, store: tuple[str, ...], tmp_path: Path
) -> AsyncIterator[Setup]:
    server = await nursery.start(partial(run_apiserver, etcd_endpoints=store))
    async with open_api_client(server.address, timeout=20) as api:
        ns = f"t{uuid.uuid4().hex[:10]}"
        namespace = kinds.by_kind("Namespace").new()
        namespace.metadata.name = ns
        await api.create(namespace)
        (tmp_path / "home").mkdir()
        async with published_agent(api, tmp_path / "agent") as (agent, node):
            yield Setup(api, server.address, tmp_path / "home", agent, node, ns)


async def test_logs(setup: Setup) -> None:
    s = setup
    await make_pod(s.api, s.ns, "web-1", ["app", "sidecar"], node=s.node)
    app = await s.agent.start_container(s.ns, "web-1", "app", ["sh", "-c", "echo one; echo two"])
    await s.agent.start_container(
        s.ns, "web-1", "sidecar", ["sh", "-c", "echo side; sleep 0.5; echo car"]
    )
    assert app.container_id is not None
    await s.agent.runtime.wait(app.container_id)

    plain = await s.run("logs", "web-1", "-n", s.ns)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == b"one\ntwo\n"
    assert plain.stderr == b'Defaulted container "app" out of: app, sidecar\n'
    tail = await s.run(
        "logs", "pod/web-1", "-n", s.ns, "-c", "app", "--tail", "1", "--timestamps", "--since", "1h"
    )
    assert tail.returncode == 0 and tail.stderr == b""
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z two\n", tail.stdout), tail.stdout
    followed = await s.run("logs", "web-1", "-n", s.ns, "-c", "sidecar", "-f")
    assert (followed.returncode, followed.stdout) == (0, b"side\ncar\n")

    missing = await s.run("logs", "nope", "-n", s.ns)
    assert missing.returncode == 1
    assert (
        missing.stderr.decode() == f'Error from server (NotFound): pods "{s.ns}/nope" not found\n'
    )
    wrong = await s.run("logs", "web-1", "-n", s.ns, "-c", "x")
    assert wrong.returncode == 1
    assert wrong.stderr.decode() == (
        'Error from server (Invalid): container "x" is not valid for pod "web-1"; '
        "choose one of: [app sidecar]\n"
    )
    port = free_port()
    silent = await make_node(s.api, port=port)
    await make_pod(s.api, s.ns, "web-2", ["app"], node=silent)
    down = await s.run("logs", "web-2", "-n", s.ns)
    assert down.returncode == 1
    assert down.stderr.decode() == (
        "Error from server (ServiceUnavailable): cannot reach the node agent of node "
        f"{silent} at 127.0.0.1:{port}\n"
    )


async def test_exec(setup: Setup) -> None:
    s = setup
    await make_pod(s.api, s.ns, "web-1", ["app"], node=s.node)
    await s.agent.start_container(s.ns, "web-1", "app", ["sleep", "60"])
    done = await s.run(
        "exec", "web-1", "-n", s.ns, "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert done.returncode == 3
    assert done.stdout == b"out\n"
    assert done.stderr == b"err\ncommand terminated with exit code 3\n"
    piped = await s.run(
        "exec", "-i", "web-1", "-n", s.ns, "--", "tr", "a-z", "A-Z", stdin=b"hello\n"
    )
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, b"HELLO\n", b"")


async def test_top(setup: Setup) -> None:
    s = setup
    await make_pod(s.api, s.ns, "busy", ["app", "helper"], node=s.node)
    await s.agent.start_container(s.ns, "busy", "app", ["sh", "-c", "while :; do :; done"])
    await s.agent.start_container(s.ns, "busy", "helper", ["sleep", "60"])
    down = await make_node(s.api, port=free_port())

    nodes = await s.run("top", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    lines = nodes.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    cpu, cpu_percent, memory, memory_percent = rows[s.node]
    assert re.fullmatch(r"\d+m", cpu) and int(cpu[:-1]) > 100
    assert cpu_percent == f"{int(cpu[:-1]) * 100 // 2000}%"
    assert re.fullmatch(r"\d+Mi", memory) and re.fullmatch(r"\d+%", memory_percent)
    assert rows[down] == ["<unknown>"] * 4

    pods = await s.run("top", "pods", "-n", s.ns)
    assert pods.returncode == 0, pods.stderr
    header, row = pods.stdout.decode().splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    name, pod_cpu, pod_memory = row.split()
    assert name == "busy" and int(pod_cpu[:-1]) > 100 and pod_memory.endswith("Mi")

    containers = await s.run("top", "po", "-A", "--containers", "-l", "")
    table = [line.split() for line in containers.stdout.decode().splitlines()]
    assert table[0] == ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert [r[:3] for r in table[1:] if r[0] == s.ns] == [
        [s.ns, "busy", "app"],
        [s.ns, "busy", "helper"],
    ]


# ------------------------------------------------------------------------------ no server


def test_durations_and_pod_names() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    for bad in ("", "5", "soon", "5m3", "m5"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)
    assert pod_name("web-1") == pod_name("pod/web-1") == pod_name("po/web-1") == "web-1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "web-1", "--since", "soon"], "invalid duration 'soon'"),
        (["logs", "web-1", "--since", "5m", "--since-time", "2024-01-01T00:00:00Z"], "not both"),
        (["logs", "web-1", "--limit-bytes", "0"], "must be a positive number of bytes"),
        (["exec", "-t", "web-1", "--", "sh"], "-t/--tty is not supported"),
        (["exec", "web-1", "--"], "Missing argument 'COMMAND...'"),
    ],
)
def test_usage_errors_exit_2_before_any_request(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, env={"RAFTSMAN_SERVER": "127.0.0.1:1"})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_top_tables() -> None:
    node = pb.NodeMetrics(
        name="n1",
        cpu_millicores=250,
        memory_bytes=512 << 20,
        cpu_allocatable_millicores=2000,
        memory_allocatable_bytes=4 << 30,
    )
    lost = pb.NodeMetrics(name="n2", error="cannot reach the node agent")
    assert printers.render(node_rows([node, lost])).splitlines() == [
        "NAME   CPU(cores)   CPU%        MEMORY(bytes)   MEMORY%",
        "n1     250m         12%         512Mi           12%",
        "n2     <unknown>    <unknown>   <unknown>       <unknown>",
    ]
    pod = pb.PodMetrics(namespace="ns", name="web-1", cpu_millicores=3, memory_bytes=12 << 20)
    pod.containers.add(name="app", cpu_millicores=3, memory_bytes=12 << 20)
    assert printers.render(
        pod_rows([pod], all_namespaces=False, containers=False)
    ).splitlines() == [
        "NAME    CPU(cores)   MEMORY(bytes)",
        "web-1   3m           12Mi",
    ]
    assert printers.render(pod_rows([pod], all_namespaces=True, containers=True)).splitlines() == [
        "NAMESPACE   POD     NAME   CPU(cores)   MEMORY(bytes)",
        "ns          web-1   app    3m           12Mi",
    ]
