"""A Service reached through the node agent's proxy: an HTTP server pod behind a ClusterIP.

Real processes: the server is ``python -m http.server`` bound to its pod IP, ready once
its httpGet readiness probe passes; the client is another pod that fetches
``http://<clusterIP>:<port>/`` with urllib. The Endpoints object is created by the test
(the endpoints controller is not part of this test).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

import trio

from actors.client import ApiClient
from node_agent.runtime.process import ProcessRuntime
from proto.k8s import core_pb2
from tests.node_agent.agent.apikit import (
    bound_pod,
    container,
    get_pod,
    host_path_volume,
    in_phase,
    poll,
    start_agent,
)


def fetch(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(b"GET /hello.txt HTTP/1.0\r\nHost: web\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_http_pod_behind_a_service_cluster_ip(
    api: ApiClient,
    nursery: trio.Nursery,
    tmp_path: Path,
    ns: str,
    process_runtime: ProcessRuntime,
) -> None:
    agent = await start_agent(
        nursery, api, tmp_path, process_runtime, node_status_update_frequency=1.0, proxy=True
    )
    port = random.randrange(20000, 30000)

    web = bound_pod("web", ns, agent.name, image="python")
    c = web.spec.containers[0]
    del c.command[:]
    c.command.extend(["python", "-m", "http.server", "--bind", "$(POD_IP)", "8080"])
    c.working_dir = "/site"
    c.ports.add(name="http", container_port=8080)
    c.readiness_probe.http_get.port.str_val = "http"
    c.readiness_probe.http_get.path = "/hello.txt"
    c.readiness_probe.period_seconds = 1
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.txt").write_text("hello from the web pod\n")
    host_path_volume(web, "site", site, "/site")
    await api.create(web)

    async def ready() -> core_pb2.Pod | None:
        pod = await get_pod(api, ns, "web")
        return pod if container(pod).ready else None

    pod = await poll(ready, timeout=30)
    assert any(co.type == "Ready" and co.status == "True" for co in pod.status.conditions)

    service = core_pb2.Service(api_version="v1", kind="Service")
    service.metadata.name, service.metadata.namespace = "web", ns
    service.spec.selector["app"] = "web"
    sp = service.spec.ports.add(name="http", port=port)
    sp.target_port.int_val = 8080
    service = await api.create(service)
    cluster_ip = service.spec.cluster_ip
    assert cluster_ip.startswith("127.")

    endpoints = core_pb2.Endpoints(api_version="v1", kind="Endpoints")
    endpoints.metadata.name, endpoints.metadata.namespace = "web", ns
    subset = endpoints.subsets.add()
    subset.addresses.add(ip=pod.status.pod_ip)
    subset.ports.add(name="http", port=8080, protocol="TCP")
    await api.create(endpoints)

    # From the host (the test) ...
    async def served() -> bytes:
        try:
            return await trio.to_thread.run_sync(fetch, cluster_ip, port)
        except OSError:
            return b""

    reply = await poll(served, timeout=20)
    assert reply.startswith(b"HTTP/1.0 200") and reply.endswith(b"hello from the web pod\n")

    # ... and from another pod.
    out = tmp_path / "out"
    client = bound_pod(
        "client",
        ns,
        agent.name,
        [
            "python",
            "-c",
            "import urllib.request; "
            f"body = urllib.request.urlopen('http://{cluster_ip}:{port}/hello.txt', timeout=5).read(); "
            "open('out/body', 'wb').write(body)",
        ],
        image="python",
        restart_policy="OnFailure",
    )
    host_path_volume(client, "out", out, "/out")
    await api.create(client)

    await poll(lambda: in_phase(api, ns, "client", "Succeeded"), timeout=30)
    assert (out / "body").read_text() == "hello from the web pod\n"

    # No ready endpoints: the ClusterIP refuses at once.
    await api.delete(core_pb2.Endpoints, "web", namespace=ns)

    async def refused() -> bool:
        try:
            await trio.to_thread.run_sync(fetch, cluster_ip, port)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False

    await poll(refused, timeout=20)
