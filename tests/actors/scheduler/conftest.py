"""Fixtures for the scheduler's integration tests: one real raftstore member per module,
a real API server in-process per test, an :class:`ApiClient` of it, and a clean slate of
Nodes and pods (shared by every test on the store: all deleted after each test, so that
no pod of one test holds resources on a node of the same name in the next)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, NotFound, open_api_client
from proto import rpc
from proto.k8s import kinds
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
        for pod in (await client.list("pods")).items:
            try:
                await client.delete(
                    "pods",
                    pod.metadata.name,
                    namespace=pod.metadata.namespace,
                    grace_period_seconds=0,
                )
            except NotFound:
                pass
        for node in (await client.list("nodes")).items:
            try:
                await client.delete("nodes", node.metadata.name)
            except NotFound:
                pass


@pytest.fixture
async def ns(api: ApiClient) -> str:
    name = f"t{uuid.uuid4().hex[:10]}"
    namespace = kinds.by_kind("Namespace").new()
    namespace.metadata.name = name
    await api.create(namespace)
    return name
