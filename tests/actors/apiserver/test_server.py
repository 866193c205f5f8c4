"""The server process: health follows the store; the CLI command starts and serves."""

from __future__ import annotations

import sys
from functools import partial

import pytest
import trio

from actors.apiserver.server import run_apiserver
from proto import rpc
from proto.apiserver import apiserver_pb2_grpc
from tests.actors.apiserver.conftest import Api, connect, make
from tests.actors.apiserver.test_metrics import scrape
from tests.support import processes
from tests.support.ports import free_ports
from tests.support.raftstore import ROOT, raftstore_cluster

pytestmark = pytest.mark.usefixtures("rpc_loop")


async def wait_health(channel: rpc.Channel, serving: bool, timeout: float = 20) -> None:
    with trio.fail_after(timeout):
        while True:
            if await channel.check_health(timeout=1) == serving:
                return
            await trio.sleep(0.05)


async def test_health_follows_the_store(nursery, tmp_path):
    with raftstore_cluster(tmp_path, size=1) as cluster:
        server = await nursery.start(
            partial(run_apiserver, etcd_endpoints=cluster.endpoints, health_interval=0.1)
        )
        async with connect(server) as api:
            await wait_health(api.channel, True)
            cluster.members[0].stop()
            await wait_health(api.channel, False)
            with pytest.raises(rpc.Unavailable):
                await api.get("ns", "default")
            cluster.members[0].start()
            cluster.wait_ready()
            await wait_health(api.channel, True)
            assert (await api.get("ns", "default")).metadata.name == "default"
            await api.create(make("ConfigMap", "after-outage", "default"))


async def test_cli_command_serves(tmp_path, store):
    port, metrics_port = free_ports(2)
    argv = [sys.executable, "-m", "cli.main", "apiserver",
            f"--etcd-servers={','.join('http://' + e for e in store)}",
            f"--listen=127.0.0.1:{port}", "--service-cluster-ip-range=127.98.0.0/24",
            f"--metrics-port={metrics_port}"]  # fmt: skip
    log = tmp_path / "apiserver.log"
    with processes.running(argv, log_path=log, cwd=ROOT):
        async with rpc.connect(f"127.0.0.1:{port}") as channel:
            await wait_health(channel, True)
            stub = channel.stub(apiserver_pb2_grpc.ApiServerStub, default_timeout=20)
            api = Api(stub=stub, channel=channel, address=f"127.0.0.1:{port}")
            svc = make("Service", f"cli{metrics_port}", "default")
            svc.spec.ports.add(port=80)
            created = await api.create(svc)
            assert created.spec.cluster_ip.startswith("127.98.0.")
            await api.delete("svc", created.metadata.name, "default")
        text = await scrape(metrics_port)
        assert 'apiserver_request_total{code="OK",resource="services",verb="create"} 1.0' in text
    assert "apiserver listening" in log.read_text()
