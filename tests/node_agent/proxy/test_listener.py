"""open_listener: shared ports, and failures classified with a remedy."""

from __future__ import annotations

import errno
import socket

import pytest

from node_agent.proxy.listener import ListenError, ListenFailure, open_listener
from tests.node_agent.proxy.net import cluster_ip
from tests.support.ports import free_port


async def test_listeners_share_an_address_and_refuse_once_closed() -> None:
    ip = cluster_ip()
    port = free_port(host=ip)
    first = open_listener(ip, port)
    second = open_listener(ip, port)
    await first.aclose()
    with socket.create_connection((ip, port), timeout=5):
        pass  # the second one still listens
    await second.aclose()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ip, port), timeout=5)


def test_permission_denied_names_both_remedies() -> None:
    def deny(sock: socket.socket, address: tuple[str, int]) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(ListenError) as caught:
        open_listener("127.96.0.10", 443, bind=deny)
    assert caught.value.failure is ListenFailure.PERMISSION_DENIED
    assert (caught.value.address, caught.value.port) == ("127.96.0.10", 443)
    message = str(caught.value)
    assert "permission denied listening on 127.96.0.10:443" in message
    assert "as root (or with CAP_NET_BIND_SERVICE)" in message
    assert "sudo sysctl -w net.ipv4.ip_unprivileged_port_start=443" in message


def test_address_not_local() -> None:
    with pytest.raises(ListenError, match=r"192\.0\.2\.1:\d+: the address is not configured") as e:
        open_listener("192.0.2.1", 30080)
    assert e.value.failure is ListenFailure.ADDRESS_NOT_AVAILABLE
