"""Fixtures for the API client suite: one real raftstore member per module, a real API
server in-process per test, and an :class:`ApiClient` of it. Tests share the store, so
each works in its own namespace (``ns``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import pytest
import trio

from actors.apiserver.server import run_apiserver
from actors.client import ApiClient, open_api_client
from proto import rpc
from proto.k8s import kinds
from tests.support.raftstore import raftstore_cluster


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ...]]:
    """Endpoints of a single-member raftstore shared by one module's tests."""
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
    namespace = kinds.by_kind("Namespace").new()
    namespace.metadata.name = name
    await api.create(namespace)
    return name


def make(kind: str, name: str, namespace: str = "", **labels: str) -> Any:
    obj = kinds.by_kind(kind).new()
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels)
    return obj


def pod(name: str, namespace: str, **labels: str) -> Any:
    obj = make("Pod", name, namespace, **labels)
    obj.spec.containers.add(name="main", image="busybox")
    return obj
