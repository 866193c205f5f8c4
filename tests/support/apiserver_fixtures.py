"""The fixtures most integration tests of the control plane start from (a pytest plugin,
loaded by tests/conftest.py): a real single-member raftstore per test module (``store``),
a real API server on it in the test's trio run (``server``), a client of it (``api``) and
a fresh namespace per test (``ns``). A package that needs something else (a bigger store,
an API server process, clean-up after each test) defines a fixture of the same name in
its own conftest, which takes precedence.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial

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
    """An API server on ``store``, serving until the test ends."""
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
    """A namespace of the test's own."""
    name = f"t{uuid.uuid4().hex[:10]}"
    namespace = kinds.by_kind("Namespace").new()
    namespace.metadata.name = name
    await api.create(namespace)
    return name
