"""Free loopback TCP ports.

The kernel picks a free port when we bind port 0; we close the socket and hand the number
to a server that binds it a moment later. Another process could take the port in between,
so a caller that starts a server on it must treat "address in use" as retryable. Ports
picked by one :func:`free_ports` call are distinct: all their sockets stay open until the
last one is picked.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int, *, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count!r}")
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port(*, host: str = LOOPBACK) -> int:
    """One port that was free on ``host`` a moment ago."""
    return free_ports(1, host=host)[0]
