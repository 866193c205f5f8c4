"""Listening sockets for Service frontends, shareable between node agents on one host.

Several node agents may run on one host (a local cluster), and each runs a proxy that
listens on every ClusterIP:port. They must not fight over the address, so every listener
sets ``SO_REUSEADDR`` and ``SO_REUSEPORT``: the kernel then lets all of them bind the same
address -- provided they run as the same user, a Linux rule -- and spreads incoming
connections over them by a hash of the connection's addresses. A listener that closes
leaves the others serving. Because the kernel may pick *any* listener, a proxy must not
listen on a port it cannot forward (no ready endpoints): the proxy closes such listeners.

The socket is created, bound and put in listening state synchronously (all three are
immediate for a numeric address), so that once :func:`open_listener` returns the port
accepts connections, and once the listener's socket is closed it refuses them. Binding
goes through a ``bind`` function, the seam that tests use to provoke ``EACCES`` even as
root.

Failures raise :class:`ListenError` with a :class:`ListenFailure` kind and a remedy a user
can act on:

* ``EACCES`` on a port below ``net.ipv4.ip_unprivileged_port_start`` (1024 by default):
  run the agent as root or with ``CAP_NET_BIND_SERVICE``, or lower that sysctl;
* ``EADDRINUSE``: another program holds the port without ``SO_REUSEPORT`` (or as another
  user); the proxy retries later;
* ``EADDRNOTAVAIL``: the address is not local (outside Linux, 127.x beyond 127.0.0.1
  needs an alias on ``lo0``).
"""

from __future__ import annotations

import enum
import errno
import socket
from collections.abc import Callable
from pathlib import Path

import trio

__all__ = [
    "BindFunction",
    "ListenError",
    "ListenFailure",
    "default_bind",
    "open_listener",
    "unprivileged_port_start",
]

BindFunction = Callable[[socket.socket, tuple[str, int]], None]
"""Binds a socket to an address: ``socket.bind`` by default; a seam for tests."""

DEFAULT_BACKLOG = 1024
_SYSCTL = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")


class ListenFailure(enum.Enum):
    PERMISSION_DENIED = "PermissionDenied"
    ADDRESS_IN_USE = "AddressInUse"
    ADDRESS_NOT_AVAILABLE = "AddressNotAvailable"
    OTHER = "Other"


class ListenError(Exception):
    """Could not listen on ``address:port``: ``failure`` says why, ``str()`` says what to do."""

    def __init__(self, address: str, port: int, failure: ListenFailure, detail: str) -> None:
        super().__init__(detail)
        self.address = address
        self.port = port
        self.failure = failure


def default_bind(sock: socket.socket, address: tuple[str, int]) -> None:
    sock.bind(address)


def unprivileged_port_start() -> int | None:
    """The host's ``net.ipv4.ip_unprivileged_port_start``, or None where unknown."""
    try:
        return int(_SYSCTL.read_text().strip())
    except (OSError, ValueError):
        return None


def open_listener(
    address: str,
    port: int,
    *,
    bind: BindFunction = default_bind,
    backlog: int = DEFAULT_BACKLOG,
) -> trio.SocketListener:
    """A listening TCP socket on ``address:port`` with SO_REUSEADDR and SO_REUSEPORT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        bind(sock, (address, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise _listen_error(address, port, exc) from exc
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


def _listen_error(address: str, port: int, exc: OSError) -> ListenError:
    where = f"{address}:{port}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        start = unprivileged_port_start()
        sysctl = "net.ipv4.ip_unprivileged_port_start"
        limit = f"{sysctl} is {start}" if start is not None else f"{sysctl} is above {port}"
        return ListenError(
            address,
            port,
            ListenFailure.PERMISSION_DENIED,
            f"permission denied listening on {where}: ports below the host's unprivileged "
            f"port start need privilege ({limit}). Either run the node agent as root (or "
            f"with CAP_NET_BIND_SERVICE), or lower the limit: sudo sysctl -w {sysctl}={port}",
        )
    if exc.errno == errno.EADDRINUSE:
        return ListenError(
            address,
            port,
            ListenFailure.ADDRESS_IN_USE,
            f"address {where} is already in use by a program that did not set SO_REUSEPORT "
            "(or runs as another user); stop it or choose another port. Retrying "
            "periodically",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenError(
            address,
            port,
            ListenFailure.ADDRESS_NOT_AVAILABLE,
            f"cannot listen on {where}: the address is not configured on this host (Linux "
            f"answers all of 127.0.0.0/8; elsewhere add an alias, e.g. sudo ifconfig lo0 "
            f"alias {address})",
        )
    return ListenError(address, port, ListenFailure.OTHER, f"cannot listen on {where}: {exc}")
