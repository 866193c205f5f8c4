"""Real loopback servers and clients for proxy tests.

Each test draws its own addresses at random from the ranges the cluster uses (ClusterIPs
in 127.96.0.0/16, pod IPs in 127.64.0.0/12), so tests -- and other test runs on the same
host -- do not meet on an address.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from collections.abc import Awaitable, Callable, Sequence

import trio

from tests.support.ports import free_port

Handler = Callable[[trio.SocketStream], Awaitable[None]]

_used: set[str] = set()


def random_ip(cidr: str) -> str:
    """A fresh host address of ``cidr`` (never .0, .1 or .255 of its /24)."""
    network = ipaddress.IPv4Network(cidr)
    while True:
        ip = network.network_address + random.randrange(network.num_addresses)
        if 2 <= int(ip) % 256 <= 254 and str(ip) not in _used:
            _used.add(str(ip))
            return str(ip)


def cluster_ip() -> str:
    return random_ip("127.96.0.0/16")


def pod_ip() -> str:
    return random_ip("127.64.0.0/12")


async def serve(
    nursery: trio.Nursery, ips: Sequence[str], make_handler: Callable[[str], Handler]
) -> int:
    """Serve ``make_handler(ip)`` on one free port of every address in ``ips``; the port."""
    for _ in range(10):
        port = free_port(host=ips[0])
        listeners: dict[str, list[trio.SocketListener]] = {}
        try:
            for ip in ips:
                listeners[ip] = await trio.open_tcp_listeners(port, host=ip)
        except OSError as exc:
            for opened in listeners.values():
                for listener in opened:
                    await listener.aclose()
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        for ip, opened in listeners.items():
            nursery.start_soon(trio.serve_listeners, make_handler(ip), opened)
        return port
    raise RuntimeError(f"no port free on all of {ips}")


def whoami(name: str) -> Handler:
    """A server that answers every connection with ``name`` and closes."""

    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(name.encode())

    return handler


async def whoami_backends(nursery: trio.Nursery, ips: Sequence[str]) -> int:
    """A "who am I" server on every address of ``ips`` (answering its IP), one port."""
    return await serve(nursery, ips, whoami)


async def echo(stream: trio.SocketStream) -> None:
    """Echo until EOF, then close."""
    async with stream:
        async for data in stream:
            await stream.send_all(data)


async def connect(ip: str, port: int, *, source: str | None = None) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source is not None:
            await sock.bind((source, 0))
        await sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    chunks = []
    async for data in stream:
        chunks.append(data)
    return b"".join(chunks)


async def ask(ip: str, port: int, *, source: str | None = None) -> str:
    """Connect, read the whole answer, return it as text (within 5 s)."""
    with trio.fail_after(5):
        async with await connect(ip, port, source=source) as stream:
            return (await read_all(stream)).decode()


async def refused(ip: str, port: int) -> bool:
    """Whether a connection to ``ip:port`` is refused at once (ECONNREFUSED)."""
    with trio.fail_after(2):
        try:
            stream = await connect(ip, port)
        except ConnectionRefusedError:
            return True
    await stream.aclose()
    return False
