"""ServiceProxy on real loopback sockets: real backends, real clients, no sleeps."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import socket
from collections import Counter

import pytest
import trio

from node_agent.proxy import (
    ListenFailure,
    PortState,
    PortStatus,
    ServicePortName,
    ServiceProxy,
)
from node_agent.proxy.listener import unprivileged_port_start
from tests.node_agent.proxy.net import (
    ask,
    cluster_ip,
    connect,
    echo,
    pod_ip,
    read_all,
    refused,
    serve,
    whoami,
    whoami_backends,
)
from tests.node_agent.proxy.objects import Port, Subset, endpoints, service
from tests.support.ports import free_port
from tests.support.processes import async_wait_for

WEB_HTTP = ServicePortName("default", "web", "http")


@pytest.fixture
async def proxy(nursery: trio.Nursery) -> ServiceProxy:
    p = ServiceProxy(retry_interval=0.1)
    await nursery.start(p.run)
    return p


def web(cip: str, port: int, **kwargs) -> list:
    return [service("web", cip, [Port("http", port)], **kwargs)]


def web_endpoints(ips: list[str], port: int, *, not_ready: list[str] | None = None) -> list:
    return [endpoints("web", [Subset(ips, [("http", port)], not_ready=not_ready or [])])]


def status_of(proxy: ServiceProxy, port: int) -> PortStatus:
    [status] = [s for s in proxy.port_status() if s.frontend.port == port]
    return status


async def test_round_robin_across_three_backends(proxy: ServiceProxy, nursery: trio.Nursery):
    ips = [pod_ip() for _ in range(3)]
    target = await whoami_backends(nursery, ips)
    cip = cluster_ip()
    port = free_port(host=cip)
    proxy.update(web(cip, port), web_endpoints(ips, target))

    answers = [await ask(cip, port) for _ in range(6)]
    assert sorted(answers[:3]) == sorted(ips)
    assert answers[3:] == answers[:3]
    counters = proxy.counters()[WEB_HTTP]
    assert counters.connections_total == 6
    assert counters.endpoint_errors_total == 0


async def test_endpoint_changes_apply_to_new_connections(
    proxy: ServiceProxy, nursery: trio.Nursery
):
    ips = [pod_ip() for _ in range(4)]
    target = await whoami_backends(nursery, ips)
    cip = cluster_ip()
    port = free_port(host=cip)
    proxy.update(web(cip, port), web_endpoints(ips[:3], target))
    assert {await ask(cip, port) for _ in range(3)} == set(ips[:3])

    gone = ips[1]
    proxy.update(web(cip, port), web_endpoints([ips[0], ips[2]], target, not_ready=[gone]))
    answers = [await ask(cip, port) for _ in range(6)]
    assert gone not in answers
    assert Counter(answers) == {ips[0]: 3, ips[2]: 3}

    proxy.update(web(cip, port), web_endpoints([ips[0], ips[2], ips[3]], target))
    assert {await ask(cip, port) for _ in range(3)} == {ips[0], ips[2], ips[3]}


async def test_open_connection_survives_endpoint_and_service_removal(
    proxy: ServiceProxy, nursery: trio.Nursery
):
    ip = pod_ip()
    target = await serve(nursery, [ip], lambda _: echo)
    cip = cluster_ip()
    port = free_port(host=cip)
    proxy.update(web(cip, port), web_endpoints([ip], target))
    with trio.fail_after(5):
        async with await connect(cip, port) as stream:
            await stream.send_all(b"before")
            assert await stream.receive_some(100) == b"before"
            proxy.update(web(cip, port), web_endpoints([], target))
            assert await refused(cip, port)
            proxy.update([], [])
            await stream.send_all(b"after")
            assert await stream.receive_some(100) == b"after"
            await stream.send_eof()
            assert await read_all(stream) == b""


async def test_no_ready_endpoints_means_refused_at_once(proxy: ServiceProxy, nursery: trio.Nursery):
    ips = [pod_ip(), pod_ip()]
    target = await whoami_backends(nursery, ips)
    cip = cluster_ip()
    port = free_port(host=cip)

    proxy.update(web(cip, port), [])  # Service, no Endpoints object yet
    assert await refused(cip, port)
    assert status_of(proxy, port).state is PortState.NO_ENDPOINTS
    proxy.update(web(cip, port), web_endpoints([], target, not_ready=ips))
    assert await refused(cip, port)

    proxy.update(web(cip, port), web_endpoints(ips[:1], target, not_ready=ips[1:]))
    assert await ask(cip, port) == ips[0]
    assert status_of(proxy, port).state is PortState.LISTENING

    proxy.update(web(cip, port), web_endpoints([], target))
    assert await refused(cip, port)
    proxy.update(web(cip, port), web_endpoints(ips, target))
    assert {await ask(cip, port) for _ in range(2)} == set(ips)


async def test_client_ip_affinity(proxy: ServiceProxy, nursery: trio.Nursery):
    ips = [pod_ip() for _ in range(3)]
    target = await whoami_backends(nursery, ips)
    cip = cluster_ip()
    port = free_port(host=cip)
    svc = web(cip, port, affinity="ClientIP")
    proxy.update(svc, web_endpoints(ips, target))

    clients = [f"127.5.{random.randrange(256)}.{i}" for i in range(2, 14)]
    chosen = {}
    for client in clients:
        answers = {await ask(cip, port, source=client) for _ in range(4)}
        assert len(answers) == 1, f"{client} reached {answers}"
        chosen[client] = answers.pop()
    assert len(set(chosen.values())) > 1  # clients are spread, each one sticks

    client = clients[0]
    rest = [ip for ip in ips if ip != chosen[client]]
    proxy.update(svc, web_endpoints(rest, target))
    moved = {await ask(cip, port, source=client) for _ in range(4)}
    assert len(moved) == 1 and moved <= set(rest)
    proxy.update(svc, web_endpoints(ips, target))  # the old endpoint returns: no move back
    assert {await ask(cip, port, source=client) for _ in range(4)} == moved


def free_node_port(host: str) -> int:
    for _ in range(50):
        port = random.randint(30000, 32767)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free nodePort on {host}")


async def test_node_port_and_update_before_run(nursery: trio.Nursery):
    ips = [pod_ip(), pod_ip()]
    target = await whoami_backends(nursery, ips)
    node, cip = pod_ip(), cluster_ip()
    port, node_port = free_port(host=cip), free_node_port(node)
    proxy = ServiceProxy(node_address=node)
    svc = service("web", cip, [Port("http", port, node_port=node_port)], type="NodePort")
    proxy.update([svc], web_endpoints(ips, target))
    await nursery.start(proxy.run)

    assert {await ask(node, node_port) for _ in range(2)} == set(ips)
    assert {await ask(cip, port) for _ in range(2)} == set(ips)
    states = {(s.frontend.kind.value, s.state) for s in proxy.port_status()}
    assert states == {("ClusterIP", PortState.LISTENING), ("NodePort", PortState.LISTENING)}

    proxy.update(web(cip, port), web_endpoints(ips, target))  # back to type ClusterIP
    assert await refused(node, node_port)
    assert await ask(cip, port) in ips


async def test_named_target_port_resolved_from_endpoints(
    proxy: ServiceProxy, nursery: trio.Nursery
):
    ip = pod_ip()
    http_port = await serve(nursery, [ip], lambda _: whoami("http"))
    metrics_port = await serve(nursery, [ip], lambda _: whoami("metrics"))
    cip = cluster_ip()
    svc_http, svc_metrics = free_port(host=cip), free_port(host=cip)
    svc = service(
        "web",
        cip,
        [Port("http", svc_http, target_port="web"), Port("metrics", svc_metrics, target_port=9)],
    )
    eps = endpoints("web", [Subset([ip], [("metrics", metrics_port), ("http", http_port)])])
    proxy.update([svc], [eps])
    assert await ask(cip, svc_http) == "http"
    assert await ask(cip, svc_metrics) == "metrics"


async def test_refusing_endpoints_are_skipped(proxy: ServiceProxy, nursery: trio.Nursery):
    live, dead1, dead2 = pod_ip(), pod_ip(), pod_ip()
    target = await whoami_backends(nursery, [live])
    cip = cluster_ip()
    port = free_port(host=cip)
    proxy.update(web(cip, port), web_endpoints([dead1, live, dead2], target))
    assert [await ask(cip, port) for _ in range(6)] == [live] * 6
    # Round robin starts at dead1, live, dead2 in turn: 1 + 0 + 2 refusals per round.
    assert proxy.counters()[WEB_HTTP].endpoint_errors_total == 6

    proxy.update(web(cip, port), web_endpoints([dead1, dead2], target))
    with trio.fail_after(5):
        async with await connect(cip, port) as stream:
            with pytest.raises(trio.BrokenResourceError):
                await read_all(stream)  # reset, not a clean empty answer

    async def failed_counted() -> bool:
        return proxy.counters()[WEB_HTTP].connections_failed_total == 1

    await async_wait_for(failed_counted, timeout=5, message="the failed connection counted")


async def test_two_proxies_share_a_cluster_ip_port(nursery: trio.Nursery):
    a_ip, b_ip = pod_ip(), pod_ip()
    target = await whoami_backends(nursery, [a_ip, b_ip])
    cip = cluster_ip()
    port = free_port(host=cip)
    # Two node agents' proxies for one Service; each is given a different endpoint here
    # only so that the answer tells which proxy served the connection.
    a, b = ServiceProxy(), ServiceProxy()
    b.update(web(cip, port), web_endpoints([b_ip], target))
    await nursery.start(b.run)
    async with trio.open_nursery() as a_nursery:
        a.update(web(cip, port), web_endpoints([a_ip], target))
        await a_nursery.start(a.run)
        assert {await ask(cip, port) for _ in range(40)} == {a_ip, b_ip}

        a.update(web(cip, port), web_endpoints([], target))  # a has nothing: b serves all
        assert {await ask(cip, port) for _ in range(20)} == {b_ip}
        a.update(web(cip, port), web_endpoints([a_ip], target))
        assert {await ask(cip, port) for _ in range(40)} == {a_ip, b_ip}
        a_nursery.cancel_scope.cancel()
    assert a.port_status() == []
    assert {await ask(cip, port) for _ in range(20)} == {b_ip}


async def test_privileged_port_fails_alone_with_clear_warning(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
):
    start = unprivileged_port_start()
    really_denied = os.geteuid() != 0 and start is not None and start > 80
    attempts = Counter[int]()

    def bind(sock: socket.socket, address: tuple[str, int]) -> None:
        # As root the kernel would allow port 80: deny it here as it does for others.
        attempts[address[1]] += 1
        if address[1] < 1024 and not really_denied:
            raise PermissionError(errno.EACCES, "Permission denied")
        sock.bind(address)

    ip = pod_ip()
    target = await whoami_backends(nursery, [ip])
    cip = cluster_ip()
    high = free_port(host=cip)
    svc = service("web", cip, [Port("http", 80), Port("alt", high)])
    eps = endpoints("web", [Subset([ip], [("http", target), ("alt", target)])])
    proxy = ServiceProxy(retry_interval=0.05, bind=bind)
    with caplog.at_level(logging.WARNING, logger="node_agent.proxy"):
        proxy.update([svc], [eps])
        await nursery.start(proxy.run)
        assert await ask(cip, high) == ip

        status = status_of(proxy, 80)
        assert (status.state, status.failure) == (
            PortState.FAILED,
            ListenFailure.PERMISSION_DENIED,
        )
        assert status_of(proxy, high).state is PortState.LISTENING

        async def retried() -> bool:
            return attempts[80] >= 3

        await async_wait_for(retried, timeout=5, message="two retries of port 80")
        proxy.update([svc], [eps])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    [warning] = warnings
    assert warning == status.message
    for part in (
        "service default/web port http",
        f"ClusterIP {cip}:80/TCP",
        "permission denied",
        "run the node agent as root (or with CAP_NET_BIND_SERVICE)",
        "sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80",
        "Other ports are not affected",
    ):
        assert part in warning
    assert await ask(cip, high) == ip


async def test_port_in_use_reported_and_taken_once_free(
    proxy: ServiceProxy, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
):
    ip = pod_ip()
    target = await whoami_backends(nursery, [ip])
    cip = cluster_ip()
    port = free_port(host=cip)
    blocker = socket.socket()  # no SO_REUSEPORT: the proxy cannot share the port
    blocker.bind((cip, port))
    blocker.listen()
    with caplog.at_level(logging.INFO, logger="node_agent.proxy"):
        try:
            proxy.update(web(cip, port), web_endpoints([ip], target))
            status = status_of(proxy, port)
            assert status.failure is ListenFailure.ADDRESS_IN_USE
            assert f"address {cip}:{port} is already in use" in status.message
        finally:
            blocker.close()

        async def listening() -> bool:
            return status_of(proxy, port).state is PortState.LISTENING

        await async_wait_for(listening, timeout=5, message="the proxy to take the freed port")
    assert await ask(cip, port) == ip
    assert f"service default/web:http: now listening on {cip}:{port}" in caplog.text


async def test_udp_port_skipped_with_one_warning(
    proxy: ServiceProxy, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
):
    ip = pod_ip()
    target = await whoami_backends(nursery, [ip])
    cip = cluster_ip()
    port = free_port(host=cip)
    svc = service("dns", cip, [Port("dns", 53, protocol="UDP"), Port("dns-tcp", port)])
    eps = endpoints(
        "dns",
        [
            Subset([ip], [("dns", 53)], protocol="UDP"),
            Subset([ip], [("dns-tcp", target)]),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="node_agent.proxy"):
        proxy.update([svc], [eps])
        proxy.update([svc], [eps])
    assert [r.getMessage() for r in caplog.records] == [
        "service default/dns:dns is not proxied: protocol UDP is not proxied (only TCP is)"
    ]
    assert status_of(proxy, 53).state is PortState.SKIPPED
    assert await ask(cip, port) == ip


async def test_large_payload_both_ways_with_half_close(proxy: ServiceProxy, nursery: trio.Nursery):
    async def digest_echo(stream: trio.SocketStream) -> None:
        # Echo as it arrives; after the client's EOF, send the digest of it all and close.
        digest = hashlib.sha256()
        async with stream:
            async for data in stream:
                digest.update(data)
                await stream.send_all(data)
            await stream.send_all(b"END" + digest.digest())

    ip = pod_ip()
    target = await serve(nursery, [ip], lambda _: digest_echo)
    cip = cluster_ip()
    port = free_port(host=cip)
    proxy.update(web(cip, port), web_endpoints([ip], target))

    payload = random.randbytes(8 << 20)
    received = bytearray()
    with trio.fail_after(20):
        async with await connect(cip, port) as stream:

            async def send() -> None:
                await stream.send_all(payload)
                await stream.send_eof()

            async def receive() -> None:
                received.extend(await read_all(stream))

            async with trio.open_nursery() as both:
                both.start_soon(send)
                both.start_soon(receive)
    expected = payload + b"END" + hashlib.sha256(payload).digest()
    assert len(received) == len(expected)
    assert received == expected

    async def counted() -> bool:
        c = proxy.counters()[WEB_HTTP]
        return c.connections_active == 0 and c.bytes_to_clients_total == len(expected)

    await async_wait_for(counted, timeout=5, message="the connection counted")
    assert proxy.counters()[WEB_HTTP].bytes_to_endpoints_total == len(payload)
    assert proxy.counters()[WEB_HTTP].relay_errors_total == 0


async def test_stopping_the_proxy_cuts_connections_and_closes_ports(
    nursery: trio.Nursery,
) -> None:
    ip = pod_ip()
    target = await serve(nursery, [ip], lambda _: echo)
    cip = cluster_ip()
    port = free_port(host=cip)
    proxy = ServiceProxy()
    proxy.update(
        [service("web", cip, [Port("", port)])],
        [endpoints("web", [Subset([ip], [("", target)])])],
    )
    with trio.fail_after(5):
        async with trio.open_nursery() as proxy_nursery:
            await proxy_nursery.start(proxy.run)
            stream = await connect(cip, port)
            await stream.send_all(b"x")
            assert await stream.receive_some(1) == b"x"
            proxy_nursery.cancel_scope.cancel()
        async with stream:
            assert await read_all(stream) == b""
        assert await refused(cip, port)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"node_address": "node-1"}, "node_address must be an IPv4 address, not 'node-1'"),
        ({"connect_timeout": 0}, "connect_timeout must be positive, not 0"),
        ({"chunk_size": 0}, "chunk_size must be at least 1, not 0"),
    ],
)
def test_bad_proxy_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceProxy(**kwargs)
