"""A tiny HTTP/1.1 server on a loopback address for probe and hook tests.

Routes map a path to ``(status, extra headers)``; ``/hang`` reads the request and never
answers. Every request's path and headers are recorded in ``requests``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import trio

ROUTES: Mapping[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "/ok": (200, ()),
    "/missing": (404, ()),
    "/boom": (500, ()),
    "/moved-to-ok": (301, (("Location", "/ok"),)),
    "/moved-to-missing": (301, (("Location", "/missing"),)),
    "/away": (302, (("Location", "http://elsewhere.invalid/ok"),)),
    "/loop": (302, (("Location", "/loop"),)),
}


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class TinyHttp:
    host: str
    port: int = 0
    requests: list[Request] = field(default_factory=list)

    async def _handle(self, stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append(Request(path, headers))
        if path == "/hang":
            await trio.sleep_forever()
        status, extra = ROUTES.get(path, (404, ()))
        reply = [f"HTTP/1.1 {status} Whatever", "Content-Length: 2", "Connection: close"]
        reply += [f"{n}: {v}" for n, v in extra]
        await stream.send_all(("\r\n".join(reply) + "\r\n\r\nok").encode())
        await stream.aclose()


@asynccontextmanager
async def tiny_http(host: str = "127.0.0.1") -> AsyncIterator[TinyHttp]:
    """Serve :data:`ROUTES` on ``host`` (a free port) until the block ends."""
    server = TinyHttp(host)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server._handle, 0, host=host))
        server.port = listeners[0].socket.getsockname()[1]
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
