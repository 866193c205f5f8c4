"""Copying one proxied connection's bytes both ways, half-closes included.

A proxied TCP connection is two connections glued together: client <-> proxy and
proxy <-> backend. :func:`relay` copies each direction in its own task:

* **Bounded.** Each direction holds at most one chunk (``chunk_size`` bytes, 64 KiB by
  default) in flight: it does not read again before the previous chunk was handed to the
  kernel. A slow reader therefore slows its writer through TCP flow control instead of
  filling the proxy's memory.
* **Half-close.** When one side finishes sending (EOF), the proxy shuts down its sending
  half towards the other side (``send_eof``) and keeps copying the other direction until
  it ends too. A client that sends a request, closes its write side and then reads the
  reply works as it does without a proxy.
* **Errors end both directions.** A reset or a write to a closed peer ends the relay at
  once: the other direction is cancelled, and the caller closes both streams.

The result tells how many bytes went each way and the first error, if any, so the proxy
can count them; :func:`relay` itself never raises for transport errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

__all__ = ["DEFAULT_CHUNK_SIZE", "RelayResult", "relay"]

DEFAULT_CHUNK_SIZE = 65536
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@dataclass
class RelayResult:
    to_backend: int = 0
    to_client: int = 0
    error: str | None = None


async def relay(
    client: trio.abc.HalfCloseableStream,
    backend: trio.abc.HalfCloseableStream,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> RelayResult:
    """Copy ``client`` -> ``backend`` and ``backend`` -> ``client`` until both directions
    reach EOF or either fails. Does not close the streams."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size!r}")
    result = RelayResult()

    async def pump(
        source: trio.abc.ReceiveStream,
        sink: trio.abc.HalfCloseableStream,
        to_backend: bool,
        cancel: trio.CancelScope,
    ) -> None:
        try:
            while True:
                data = await source.receive_some(chunk_size)
                if not data:
                    await sink.send_eof()
                    return
                await sink.send_all(data)
                if to_backend:
                    result.to_backend += len(data)
                else:
                    result.to_client += len(data)
        except _TRANSPORT_ERRORS as exc:
            if result.error is None:
                direction = "client -> backend" if to_backend else "backend -> client"
                result.error = f"{direction}: {type(exc).__name__}: {exc}"
            cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump, client, backend, True, nursery.cancel_scope)
        nursery.start_soon(pump, backend, client, False, nursery.cancel_scope)
    return result
