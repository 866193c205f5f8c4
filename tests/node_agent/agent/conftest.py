"""Fixtures for the node agent tests in this folder: one real raftstore member per module,
a real API server in-process per test and an :class:`ApiClient` of it, a namespace of the
test's own (``ns``: the module's tests share the store), and a process runtime whose
containers are killed when the test ends. Helpers that use them are in
:mod:`tests.node_agent.agent.apikit`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, open_api_client
from node_agent.runtime.process import ProcessRuntime
from proto import rpc
from proto.k8s import core_pb2
from tests.support.raftstore import raftstore_cluster


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ...]]:
    with raftstore_cluster(tmp_path_factory.mktemp("raftstore"), size=1) as cluster:
        yield cluster.endpoints


@pytest.fixture
async def server(nursery: trio.Nursery, store: tuple[str, ...]) -> rpc.Server:
    started: rpc.Server = await nursery.start(
        partial(run_apiserver, etcd_endpoints=store, bookmark_interval=0.2)
    )
    return started


@pytest.fixture
async def api(server: rpc.Server) -> AsyncIterator[ApiClient]:
    async with open_api_client(server.address, timeout=20) as client:
        yield client


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"t{uuid.uuid4().hex[:10]}"
    namespace = core_pb2.Namespace(api_version="v1", kind="Namespace")
    namespace.metadata.name = name
    await api.create(namespace)
    return name


@pytest.fixture
async def process_runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime under ``tmp_path/node/containers``; every container it still runs
    after the test is killed (by process group, through the runtime)."""
    runtime = ProcessRuntime(state_dir=tmp_path / "node" / "containers")
    try:
        yield runtime
    finally:
        with trio.CancelScope(shield=True):
            for info in await runtime.containers():
                if info.status.running:
                    await runtime.stop(info.id, grace=0)
