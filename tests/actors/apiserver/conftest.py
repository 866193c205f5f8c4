"""Fixtures for the API server suite: a real store, real API servers in-process.

``store`` is one store per module, parametrized by backend: a raftstore member, and a
real etcd (marker ``needs_etcd``). ``apiserver`` starts an API server on it for one test;
``api`` is a client for it. Tests share the store, so each works in its own namespace
(``ns``) and gives cluster-scoped objects unique names (``unique``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.apiserver.server import run_apiserver
from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from proto.apiserver import apiserver_pb2_grpc
from proto.k8s import kinds
from tests.support.etcd import etcd_cluster
from tests.support.raftstore import raftstore_cluster


@contextmanager
def _raftstore(base: Path) -> Iterator[tuple[str, ...]]:
    with raftstore_cluster(base, size=1) as cluster:
        yield cluster.endpoints


@contextmanager
def _etcd(base: Path) -> Iterator[tuple[str, ...]]:
    with etcd_cluster(base, size=1) as cluster:
        yield cluster.endpoints


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[tuple[str, ...]]]] = {
    "raftstore": _raftstore,
    "etcd": _etcd,
}


@pytest.fixture(
    scope="module",
    params=["raftstore", pytest.param("etcd", marks=pytest.mark.needs_etcd)],
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ...]]:
    """Endpoints of a single-member store shared by one module's tests."""
    with BACKENDS[request.param](tmp_path_factory.mktemp(request.param)) as endpoints:
        yield endpoints


def unpack(envelope: Any) -> Any:
    full_name = envelope.type_url.rpartition("/")[2]
    info = next(k for k in kinds.KINDS if k.message.DESCRIPTOR.full_name == full_name)
    obj = info.message()
    envelope.Unpack(obj)
    return obj


def pack(obj: Any) -> Any:
    from google.protobuf import any_pb2

    envelope = any_pb2.Any()
    envelope.Pack(obj)
    return envelope


@dataclass
class Api:
    """A thin test client: objects in, objects out."""

    stub: Any
    channel: rpc.Channel
    address: str

    async def create(self, obj: Any) -> Any:
        return unpack((await self.stub.Create(pb.CreateRequest(object=pack(obj)))).object)

    async def get(self, kind: str, name: str, namespace: str = "") -> Any:
        request = pb.GetRequest(kind=kind, namespace=namespace, name=name)
        return unpack((await self.stub.Get(request)).object)

    async def list(self, kind: str, namespace: str = "", **kw: Any) -> tuple[list[Any], Any]:
        response = await self.stub.List(pb.ListRequest(kind=kind, namespace=namespace, **kw))
        return [unpack(o) for o in response.items], response

    async def update(self, obj: Any) -> Any:
        return unpack((await self.stub.Update(pb.UpdateRequest(object=pack(obj)))).object)

    async def update_status(self, obj: Any) -> Any:
        request = pb.UpdateStatusRequest(object=pack(obj))
        return unpack((await self.stub.UpdateStatus(request)).object)

    async def patch(
        self, kind: str, name: str, patch: str, namespace: str = "", status: bool = False
    ) -> Any:
        request = pb.PatchRequest(
            kind=kind, namespace=namespace, name=name, merge_patch=patch, status=status
        )
        return unpack((await self.stub.Patch(request)).object)

    async def delete(self, kind: str, name: str, namespace: str = "", **kw: Any) -> Any:
        request = pb.DeleteRequest(kind=kind, namespace=namespace, name=name, **kw)
        response = await self.stub.Delete(request)
        return unpack(response.object), response.pending

    async def bind(self, name: str, node: str, namespace: str, uid: str = "") -> Any:
        request = pb.BindRequest(namespace=namespace, name=name, node_name=node, uid=uid)
        return unpack((await self.stub.Bind(request)).object)


@pytest.fixture
async def start_apiserver(
    rpc_loop: None, nursery: trio.Nursery, store: tuple[str, ...]
) -> Callable[..., Any]:
    """Start an API server on ``store`` (keyword arguments go to run_apiserver)."""

    async def start(**kw: Any) -> rpc.Server:
        server: rpc.Server = await nursery.start(partial(run_apiserver, etcd_endpoints=store, **kw))
        return server

    return start


@asynccontextmanager
async def connect(server: rpc.Server) -> AsyncIterator[Api]:
    async with rpc.connect(server.address) as channel:
        stub = channel.stub(apiserver_pb2_grpc.ApiServerStub, default_timeout=20)
        yield Api(stub=stub, channel=channel, address=server.address)


@pytest.fixture
async def api(start_apiserver: Callable[..., Any]) -> AsyncIterator[Api]:
    """A client of a fresh API server (bookmarks every 0.2 s)."""
    server = await start_apiserver(bookmark_interval=0.2)
    async with connect(server) as client:
        yield client


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name no other test uses (DNS-1123 label)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def ns(api: Api, unique: str) -> str:
    """A fresh namespace for this test."""
    namespace = kinds.by_kind("Namespace").new()
    namespace.metadata.name = unique
    await api.create(namespace)
    return unique


def make(kind: str, name: str = "", namespace: str = "", **labels: str) -> Any:
    obj = kinds.by_kind(kind).new()
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels)
    return obj


def pod(name: str, namespace: str, image: str = "busybox", **labels: str) -> Any:
    obj = make("Pod", name, namespace, **labels)
    obj.spec.containers.add(name="main", image=image)
    return obj
