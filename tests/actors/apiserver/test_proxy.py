"""The API server's relay to node agents: logs, exec and top through a real apiserver.

An in-process API server on a raftstore member, and an in-process node agent API (the
real process runtime and service, a fake lookup) that a Node object points to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, errors, open_api_client
from proto import rpc
from tests.node_agent.agent.fake_agent import RunningAgent, make_node, make_pod, published_agent
from tests.support.ports import free_port


@pytest.fixture
async def api(nursery: trio.Nursery, store: tuple[str, ...]) -> AsyncIterator[ApiClient]:
    server = await nursery.start(partial(run_apiserver, etcd_endpoints=store))
    async with open_api_client(server.address, timeout=20) as client:
        yield client


@pytest.fixture
async def agent(api: ApiClient, tmp_path: Path) -> AsyncIterator[tuple[RunningAgent, str]]:
    """A node agent API on 127.0.0.1 and the Node that points to it."""
    async with published_agent(api, tmp_path) as published:
        yield published


async def _logs(api: ApiClient, name: str, **kw: Any) -> bytes:
    out = b""
    async with aclosing(api.logs(name, **kw)) as chunks:
        async for chunk in chunks:
            out += chunk
    return out


# ------------------------------------------------------------------------------ logs


async def test_logs_of_the_default_and_a_named_container(
    api: ApiClient, ns: str, agent: tuple[RunningAgent, str]
) -> None:
    running, node = agent
    await make_pod(api, ns, "web-1", ["app", "sidecar"], node=node)
    app = await running.start_container(ns, "web-1", "app", ["sh", "-c", "echo one; echo two"])
    await running.start_container(ns, "web-1", "sidecar", ["sh", "-c", "echo from the side"])
    for ref in [app]:
        assert ref.container_id is not None
        await running.runtime.wait(ref.container_id)
    with trio.fail_after(20):
        assert await _logs(api, "web-1", namespace=ns) == b"one\ntwo\n"
        assert await _logs(api, "web-1", namespace=ns, tail_lines=1) == b"two\n"
        assert await _logs(api, "web-1", namespace=ns, container="sidecar", follow=True) == (
            b"from the side\n"
        )


async def test_default_container_annotation_is_honoured(
    api: ApiClient, ns: str, agent: tuple[RunningAgent, str]
) -> None:
    running, node = agent
    annotations = {"kubectl.kubernetes.io/default-container": "sidecar"}
    await make_pod(api, ns, "web-1", ["app", "sidecar"], node=node, annotations=annotations)
    await running.start_container(ns, "web-1", "app", ["sh", "-c", "echo app"])
    side = await running.start_container(ns, "web-1", "sidecar", ["sh", "-c", "echo side"])
    assert side.container_id is not None
    await running.runtime.wait(side.container_id)
    assert await _logs(api, "web-1", namespace=ns) == b"side\n"


async def test_logs_errors(api: ApiClient, ns: str, agent: tuple[RunningAgent, str]) -> None:
    _, node = agent
    with pytest.raises(errors.NotFound, match=f'pods "{ns}/nope" not found'):
        await _logs(api, "nope", namespace=ns)
    await make_pod(api, ns, "pending", ["app"])
    with pytest.raises(rpc.FailedPrecondition, match="pod pending is not scheduled to a node yet"):
        await _logs(api, "pending", namespace=ns)
    await make_pod(api, ns, "web-1", ["a", "b"], node=node, init=["setup"])
    with pytest.raises(
        errors.Invalid,
        match=r'container "x" is not valid for pod "web-1"; choose one of: \[a b\] '
        r"or one of the init containers: \[setup\]",
    ):
        await _logs(api, "web-1", namespace=ns, container="x")
    # Known to the API, not yet to the agent: the agent's own answer passes through.
    with pytest.raises(errors.NotFound, match=r'pod "[^"]*web-1" is not on this node'):
        await _logs(api, "web-1", namespace=ns, container="b")


async def test_waiting_container_has_no_logs_yet(
    api: ApiClient, ns: str, agent: tuple[RunningAgent, str]
) -> None:
    _, node = agent
    pod = await make_pod(api, ns, "web-1", ["app"], node=node)
    status = pod.status.container_statuses.add(name="app", image="busybox")
    status.state.waiting.reason = "ContainerCreating"
    await api.update_status(pod)
    with pytest.raises(
        rpc.FailedPrecondition,
        match='container "app" in pod "web-1" is waiting to start: ContainerCreating',
    ):
        await _logs(api, "web-1", namespace=ns)


async def test_unreachable_or_unpublished_node_agent(api: ApiClient, ns: str) -> None:
    port = free_port()
    silent = await make_node(api, port=port)
    await make_pod(api, ns, "web-1", ["app"], node=silent)
    with trio.fail_after(20), pytest.raises(errors.ServiceUnavailable) as caught:
        await _logs(api, "web-1", namespace=ns)
    assert str(caught.value) == f"cannot reach the node agent of node {silent} at 127.0.0.1:{port}"
    unpublished = await make_node(api)
    await make_pod(api, ns, "web-2", ["app"], node=unpublished)
    with pytest.raises(
        errors.ServiceUnavailable, match="status.daemonEndpoints.kubeletEndpoint.Port"
    ):
        await _logs(api, "web-2", namespace=ns)
    with pytest.raises(errors.ServiceUnavailable, match="cannot reach the node agent"):
        await api.exec("web-1", ["true"], namespace=ns)


# ------------------------------------------------------------------------------ exec


async def test_exec_through_the_apiserver(
    api: ApiClient, ns: str, agent: tuple[RunningAgent, str]
) -> None:
    running, node = agent
    await make_pod(api, ns, "web-1", ["app"], node=node)
    await running.start_container(ns, "web-1", "app", ["sleep", "60"])
    out: list[bytes] = []
    err: list[bytes] = []

    async def collect_out(chunk: bytes) -> None:
        out.append(chunk)

    async def collect_err(chunk: bytes) -> None:
        err.append(chunk)

    async def stdin() -> AsyncIterator[bytes]:
        yield b"abc\n"
        yield b"def\n"

    with trio.fail_after(20):
        code = await api.exec(
            "web-1",
            ["sh", "-c", "tr a-z A-Z; echo bye >&2; exit 7"],
            namespace=ns,
            stdin=stdin(),
            stdout=collect_out,
            stderr=collect_err,
        )
    assert (code, b"".join(out), b"".join(err)) == (7, b"ABC\nDEF\n", b"bye\n")
    assert await api.exec("web-1", ["true"], namespace=ns) == 0
    with pytest.raises(errors.Invalid, match='container "db" is not valid for pod "web-1"'):
        await api.exec("web-1", ["true"], namespace=ns, container="db")


async def test_exec_in_an_exited_container_fails_with_the_agents_reason(
    api: ApiClient, ns: str, agent: tuple[RunningAgent, str]
) -> None:
    running, node = agent
    await make_pod(api, ns, "web-1", ["app"], node=node)
    ref = await running.start_container(ns, "web-1", "app", ["true"])
    assert ref.container_id is not None
    await running.runtime.wait(ref.container_id)
    with pytest.raises(rpc.FailedPrecondition, match="it is not running"):
        await api.exec("web-1", ["ls"], namespace=ns)


# ------------------------------------------------------------------------------ top


async def test_top_nodes_and_pods(api: ApiClient, ns: str, agent: tuple[RunningAgent, str]) -> None:
    running, node = agent
    await make_pod(api, ns, "busy", ["app"], node=node)
    await make_pod(api, ns, "pending", ["app"])
    await running.start_container(ns, "busy", "app", ["sh", "-c", "while :; do :; done"])
    down_port = free_port()
    down = await make_node(api, port=down_port)
    with trio.fail_after(30):
        nodes = await api.top_nodes()
        pods = await api.top_pods(namespace=ns)
    by_name = {n.name: n for n in nodes.nodes}
    mine = by_name[node]
    assert mine.error == ""
    assert mine.cpu_millicores > 100 and mine.memory_bytes > 0
    assert (mine.cpu_allocatable_millicores, mine.memory_allocatable_bytes) == (2000, 4 << 30)
    expected = f"cannot reach the node agent of node {down} at 127.0.0.1:{down_port}"
    assert by_name[down].error == expected
    assert f"no metrics for node {down}: {expected}" in nodes.warnings
    [busy] = pods.pods
    assert (busy.namespace, busy.name) == (ns, "busy")
    assert busy.cpu_millicores > 100 and busy.memory_bytes > 0
    assert [c.name for c in busy.containers] == ["app"]
    only = await api.top_nodes(name=node)
    assert [n.name for n in only.nodes] == [node]
    with pytest.raises(errors.NotFound):
        await api.top_pods(namespace=ns, name="pending")
