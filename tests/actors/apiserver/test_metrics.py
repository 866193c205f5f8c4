"""Prometheus metrics: scraped over HTTP from a running API server."""

from __future__ import annotations

import urllib.request

import pytest
import trio

from actors.apiserver.metrics import resource_of
from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from tests.actors.apiserver.conftest import connect, make, pack
from tests.support.ports import free_ports


async def scrape(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    return await trio.to_thread.run_sync(get)


def test_resource_of_requests():
    assert resource_of(pb.GetRequest(kind="po")) == "pods"
    assert resource_of(pb.CreateRequest(object=pack(make("ConfigMap", "c")))) == "configmaps"
    assert resource_of(pb.CreateRequest(manifest_json='{"kind": "Service"}')) == "services"
    assert resource_of(pb.BindRequest(name="p")) == "pods"
    assert resource_of(pb.GetRequest(kind="nonsense")) == ""


async def test_requests_latency_and_watches_are_scraped(start_apiserver, ns):
    (port,) = free_ports(1)
    server = await start_apiserver(metrics_port=port)
    async with connect(server) as api:
        await api.create(make("ConfigMap", "c", ns))
        with pytest.raises(rpc.NotFound):
            await api.get("cm", "missing", ns)
        async with api.stub.Watch(pb.WatchRequest(kind="cm", namespace=ns)) as w:
            await w.receive()
            text = await scrape(port)
            assert 'apiserver_registered_watchers{resource="configmaps"} 1.0' in text
        assert 'apiserver_request_total{code="OK",resource="configmaps",verb="create"} 1.0' in text
        assert (
            'apiserver_request_total{code="NOT_FOUND",resource="configmaps",verb="get"} 1.0' in text
        )
        assert (
            'apiserver_request_duration_seconds_count{resource="configmaps",verb="create"} 1.0'
            in text
        )
        with trio.fail_after(10):
            while 'apiserver_registered_watchers{resource="configmaps"} 0.0' not in text:
                await trio.sleep(0.05)
                text = await scrape(port)
        assert 'code="CANCELLED",resource="configmaps",verb="watch"' in text
