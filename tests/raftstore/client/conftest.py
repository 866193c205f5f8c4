"""Fixtures for the client suite, generic over the store backend.

Every test talks to a store through ``store`` (one single-member store shared by the
module) or ``store3`` (a fresh 3-member store per test, for tests that kill members).
Both are parametrized by backend: a real ``etcd`` and ``raftstore``, so one suite proves
that raftstore's semantics match etcd's. A backend is one function that yields a
:class:`StoreCluster`, plus one entry in :data:`BACKENDS`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from raftstore.client import Client, open_client
from tests.support.etcd import etcd_cluster
from tests.support.raftstore import raftstore_cluster


@dataclass(frozen=True)
class StoreCluster:
    """A running store, whatever the backend: its endpoints and how to hurt its members."""

    backend: str
    endpoints: tuple[str, ...]
    kill: Callable[[int], None]  # SIGKILL member i
    logs: Callable[[], str]


@contextmanager
def etcd_backend(base_dir: Path, size: int) -> Iterator[StoreCluster]:
    with etcd_cluster(base_dir, size=size) as cluster:
        yield StoreCluster("etcd", cluster.endpoints, cluster.kill, cluster.logs)


@contextmanager
def raftstore_backend(base_dir: Path, size: int) -> Iterator[StoreCluster]:
    with raftstore_cluster(base_dir, size=size) as cluster:
        yield StoreCluster("raftstore", cluster.endpoints, cluster.kill, cluster.logs)


BACKENDS: dict[str, Callable[[Path, int], AbstractContextManager[StoreCluster]]] = {
    "etcd": etcd_backend,
    "raftstore": raftstore_backend,
}
BACKEND_PARAMS = [pytest.param("etcd", marks=pytest.mark.needs_etcd), "raftstore"]


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreCluster]:
    """A single-member store shared by the tests of one module (use ``prefix`` keys)."""
    backend = request.param
    with BACKENDS[backend](tmp_path_factory.mktemp(f"{backend}-1"), 1) as cluster:
        yield cluster


@pytest.fixture(params=BACKEND_PARAMS)
def store3(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCluster]:
    """A fresh 3-member store for one test, which may kill members."""
    backend = request.param
    with BACKENDS[backend](tmp_path / backend, 3) as cluster:
        yield cluster


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix no other test uses."""
    return f"/test/{request.node.name}/{uuid.uuid4().hex[:8]}/"


@pytest.fixture
async def client(rpc_loop: None, store: StoreCluster) -> AsyncIterator[Client]:
    async with open_client(store.endpoints) as client:
        yield client
