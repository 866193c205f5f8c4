"""Channels to every endpoint, the endpoint in use, and failover with a stated retry policy.

The client opens one gRPC channel per endpoint up front (gRPC connects lazily and
reconnects by itself) and sends every call to the *current* endpoint. When a call to it
fails with UNAVAILABLE (connection refused or lost, or the member says it has no leader)
or runs past its deadline, the next endpoint becomes current, round robin.

Retry policy, by kind of call (the same stance as etcd's clientv3):

* **Reads** (range outside a transaction, status, member list, lease TTL queries) are
  idempotent: on UNAVAILABLE the call is retried at once on the next endpoint. When
  every endpoint failed in a round (a leader was just lost and the others answer ``no
  leader`` / ``leader changed`` until they elect one, or the whole store is restarting),
  the client waits (50 ms, doubling up to 500 ms) and tries another round, for up to
  ``retry_window`` seconds (3 s by default: an election takes one to two election
  timeouts) -- as etcd's clientv3 retries reads until its context ends; then
  :class:`EndpointsUnavailable`, naming each endpoint's last answer.
* **Writes** (put, delete, txn, compact, lease grant and revoke) are retried on the next
  endpoint only when gRPC proves the request never left this process (``failed to
  connect to all addresses``: no connection existed), in rounds as above while it
  keeps never leaving. Any other UNAVAILABLE -- the
  connection broke mid-call, ``request timed out``, ``leader changed`` -- raises
  :class:`Indeterminate`: the write may have been applied, and only the caller can tell
  whether repeating it is safe (a compare-and-swap on ``mod_revision`` usually is).
  DEADLINE_EXCEEDED on a write is just as indeterminate and stays
  :class:`proto.rpc.DeadlineExceeded`.
* Streams (watch, lease keep-alive) resume on the next endpoint by themselves; see
  :mod:`raftstore.client.watch` and :mod:`raftstore.client.lease`.

``timeout`` is the gRPC deadline of each attempt; a caller bounds a whole call, retries
included, with a trio cancel scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio
from google.protobuf import message as _message

from proto import rpc
from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftstore.client.errors import EndpointsUnavailable, Indeterminate, translate

RETRY_WINDOW = 3.0
"""How long a call keeps trying rounds of every endpoint (see the module docstring)."""
_ROUND_PAUSE_INITIAL = 0.05
_ROUND_PAUSE_MAX = 0.5

# gRPC's words for "no transport was available, so nothing was sent".
_NEVER_SENT = ("failed to connect to all addresses", "DNS resolution failed")


def parse_endpoint(endpoint: str) -> str:
    """``"host:port"`` from ``"host:port"`` or a URL like ``"http://host:port"``."""
    text = endpoint.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint must be host:port or http(s)://host:port, not {endpoint!r}")
        text = parts.netloc
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"endpoint must be host:port or http(s)://host:port, not {endpoint!r}")
    return text


def never_sent(error: rpc.RpcError) -> bool:
    """True when gRPC failed before any connection carried the request."""
    return isinstance(error, rpc.Unavailable) and error.message.startswith(_NEVER_SENT)


class Transport:
    """Stubs on every endpoint; which endpoint is current; unary calls with failover."""

    def __init__(
        self,
        endpoints: Sequence[str],
        channels: Sequence[rpc.Channel],
        *,
        timeout: float,
        retry_window: float = RETRY_WINDOW,
    ) -> None:
        if not endpoints or len(endpoints) != len(channels):
            raise ValueError("need one channel per endpoint, and at least one endpoint")
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self.retry_window = retry_window
        self._channels = tuple(channels)
        self._stubs: dict[tuple[int, type], Any] = {}
        self._current = 0
        self.cancelled_streams = 0  # streams ended by cancelling their call (see settle)

    @property
    def current(self) -> int:
        """Index of the endpoint calls go to."""
        return self._current

    def stub(self, index: int, stub_class: type) -> Any:
        key = (index, stub_class)
        stub = self._stubs.get(key)
        if stub is None:
            stub = self._channels[index].stub(stub_class, default_timeout=self.timeout)
            self._stubs[key] = stub
        return stub

    def failed(self, index: int) -> None:
        """Endpoint ``index`` failed: move on, unless another failure already did."""
        if index == self._current:
            self._current = (index + 1) % len(self.endpoints)

    def use(self, index: int) -> None:
        """Make endpoint ``index`` current (tests and operators pin an endpoint)."""
        if not 0 <= index < len(self.endpoints):
            raise IndexError(f"no endpoint {index}; have {len(self.endpoints)}")
        self._current = index

    async def unary(
        self, stub_class: type, method: str, request: _message.Message, *, idempotent: bool
    ) -> Any:
        """Call ``method`` on the current endpoint, failing over as the policy above says."""
        give_up_at = trio.current_time() + self.retry_window
        pause = _ROUND_PAUSE_INITIAL
        while True:
            failures: dict[str, str] = {}
            for _ in range(len(self.endpoints)):
                index = self._current
                call = getattr(self.stub(index, stub_class), method)
                try:
                    return await call(request, timeout=self.timeout)
                except rpc.RpcError as raw:
                    error = translate(raw)
                    if isinstance(error, rpc.DeadlineExceeded):
                        self.failed(index)
                        raise error from None
                    if not isinstance(error, rpc.Unavailable):
                        raise error from None
                    self.failed(index)
                    if not idempotent and not never_sent(error):
                        raise Indeterminate(
                            f"{method} to {self.endpoints[index]} may or may not have been "
                            f"applied: {error.message}"
                        ) from error
                    failures[self.endpoints[index]] = error.message
            if trio.current_time() + pause > give_up_at:
                detail = "; ".join(f"{e}: {m}" for e, m in failures.items())
                raise EndpointsUnavailable(f"{method}: no endpoint available ({detail})")
            await trio.sleep(pause)
            pause = min(pause * 2, _ROUND_PAUSE_MAX)


@asynccontextmanager
async def open_transport(
    endpoints: Sequence[str],
    *,
    tls: rpc.TlsConfig | None,
    timeout: float,
    retry_window: float = RETRY_WINDOW,
) -> AsyncIterator[Transport]:
    """A :class:`Transport` with a channel per endpoint; channels close when the block ends."""
    if isinstance(endpoints, str):
        raise TypeError(f"endpoints must be a sequence of str, not the str {endpoints!r}")
    targets = [parse_endpoint(e) for e in endpoints]
    if not targets:
        raise ValueError("need at least one endpoint")
    async with AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(rpc.connect(t, tls=tls)) for t in targets]
        transport = Transport(targets, channels, timeout=timeout, retry_window=retry_window)
        try:
            yield transport
        finally:
            with trio.CancelScope(shield=True):
                await settle(transport)


async def settle(transport: Transport) -> None:
    """Before closing the channels, let cancelled streams finish inside this trio run.

    Works around a gap in :mod:`proto.rpc`: leaving a streaming call's ``async with``
    cancels the call without waiting for gRPC's last completion event for it, and an event
    that arrives after the run's asyncio loop closed crashes the *next* run's loop
    ("Event loop is closed"; seen between tests, each its own trio run). One unary round
    trip after the cancellations lets those local events through first. Best effort and
    bounded: errors and slowness are ignored.
    """
    if not transport.cancelled_streams:
        return
    stub = transport.stub(transport.current, rpc_pb2_grpc.MaintenanceStub)
    with trio.move_on_after(1.0):
        try:
            await stub.Status(rpc_pb2.StatusRequest(), timeout=1.0)
        except rpc.RpcError:
            pass
