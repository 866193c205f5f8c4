"""Watches that survive endpoint failures without losing or repeating an event.

``async with client.watch(key, prefix=True) as watch: async for batch in watch`` yields
:class:`~raftstore.client.results.WatchBatch` es: events in revision order, every event of
one revision in one batch (etcd never splits a revision unless asked to fragment, which
this client never does).

Resume. The watch remembers the next revision it needs: after creation, the store's
revision + 1 (or ``start_revision``); after each batch, the last event's revision + 1.
When the stream fails -- the member died, the connection broke, the member lost its
leader (the watch asks for etcd's ``hasleader`` guard, so a partitioned member ends it
instead of going silent) -- the watch is created again on the next endpoint from that
revision. Events before it are dropped should a store send them anyway, so each event is
delivered exactly once, in order. If history at that revision has been compacted, the
store cancels the watch and iteration raises
:class:`~raftstore.client.errors.Compacted` with ``compact_revision``: the caller must
re-list and watch from the list's revision (Kubernetes' "410 Gone"). When no endpoint
accepts the watch for ``timeout`` seconds (the client's), iteration raises
:class:`~raftstore.client.errors.EndpointsUnavailable`.

Progress notifications (``progress_notify=True``) arrive as empty batches; the resume
point only moves with events, as in etcd's clientv3.

One gRPC stream per watch. gRPC multiplexes the streams over one HTTP/2 connection per
endpoint, so a watch costs a stream, not a connection. We chose this over sharing one
stream among all watches (as clientv3 does): a shared stream needs a demultiplexing task
and a buffer per watch, and then either a slow consumer stalls every other watch or its
buffer needs an overflow policy; with a stream each, gRPC flow control pushes back on the
slow watch alone. No background task: the iterating task reads the stream itself, and
leaving the block cancels the call, which ends the watch on the server.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from proto import rpc
from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from raftstore.client.errors import (
    Compacted,
    EndpointsUnavailable,
    WatchCanceled,
    translate,
)
from raftstore.client.keys import Data, key_range
from raftstore.client.results import Event, Header, WatchBatch
from raftstore.client.transport import Transport

# etcd's rpctypes.MetadataRequireLeaderKey: end the stream when the member has no leader.
REQUIRE_LEADER = (("hasleader", "true"),)

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0


class WatchFilter(enum.Enum):
    """Event types the store leaves out of a watch."""

    NO_PUT = rpc_pb2.WatchCreateRequest.NOPUT
    NO_DELETE = rpc_pb2.WatchCreateRequest.NODELETE


@dataclass(frozen=True)
class WatchSpec:
    """What a watch selects; the start revision is kept by the :class:`Watch`."""

    key: bytes
    range_end: bytes
    prev_kv: bool
    progress_notify: bool
    filters: tuple[WatchFilter, ...]

    @classmethod
    def build(
        cls,
        key: Data,
        *,
        prefix: bool,
        range_end: Data | None,
        prev_kv: bool,
        progress_notify: bool,
        filters: Sequence[WatchFilter],
    ) -> WatchSpec:
        start, end = key_range(key, prefix=prefix, range_end=range_end)
        return cls(start, end, prev_kv, progress_notify, tuple(filters))

    def create_request(self, start_revision: int) -> rpc_pb2.WatchRequest:
        return rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(
                key=self.key,
                range_end=self.range_end,
                start_revision=start_revision,
                progress_notify=self.progress_notify,
                filters=[f.value for f in self.filters],
                prev_kv=self.prev_kv,
            )
        )


class _StreamLost(Exception):
    """The current stream failed in a way that resuming elsewhere may fix."""


class Watch:
    """An open watch; iterate it for batches. Made by :meth:`Client.watch`."""

    def __init__(self, transport: Transport, spec: WatchSpec, *, start_revision: int) -> None:
        self._transport = transport
        self._spec = spec
        self._next_revision = start_revision  # 0 until created: "after now"
        self._stack: AsyncExitStack | None = None
        self._stream: Any = None
        self._index = -1
        self._watch_id = -1
        self._closed = False  # the block ended or the store canceled the watch
        self.resumes = 0  # how often the watch was re-created after a failure

    @property
    def next_revision(self) -> int:
        """The revision the watch would resume from (0 before it was first created)."""
        return self._next_revision

    @property
    def endpoint(self) -> str | None:
        """The endpoint currently serving the watch."""
        return None if self._stream is None else self._transport.endpoints[self._index]

    async def _close_stream(self) -> None:
        stack, self._stack, self._stream = self._stack, None, None
        if stack is not None:
            self._transport.cancelled_streams += 1
            with trio.CancelScope(shield=True):
                await stack.aclose()

    async def _create_on(self, index: int) -> None:
        stack = AsyncExitStack()
        self._stack, self._index = stack, index
        stub = self._transport.stub(index, rpc_pb2_grpc.WatchStub)
        self._stream = await stack.enter_async_context(stub.Watch(metadata=REQUIRE_LEADER))
        await self._stream.send(self._spec.create_request(self._next_revision))
        with trio.move_on_after(self._transport.timeout):
            response = await self._stream.receive()
            if response is None:
                raise _StreamLost("the stream ended before the watch was created")
            if not response.created:
                raise rpc.Internal(f"expected a watch creation response, got {response!r}")
            if response.canceled:
                raise _cancel_error(response)
            self._watch_id = response.watch_id
            if self._next_revision == 0:
                self._next_revision = response.header.revision + 1
            return
        raise _StreamLost(f"no answer within {self._transport.timeout:g}s")

    async def _open(self) -> None:
        """Create the watch on the current endpoint, failing over until one accepts it."""
        deadline = trio.current_time() + self._transport.timeout
        backoff = _BACKOFF_FIRST
        failures: list[str] = []
        while True:
            index = self._transport.current
            try:
                await self._create_on(index)
                return
            except (rpc.RpcError, _StreamLost) as raw:
                await self._close_stream()
                error = translate(raw) if isinstance(raw, rpc.RpcError) else raw
                if not isinstance(error, rpc.Unavailable | _StreamLost):
                    raise error from None
                self._transport.failed(index)
                failures.append(f"{self._transport.endpoints[index]}: {error}")
            if trio.current_time() + backoff > deadline:
                raise EndpointsUnavailable(f"watch: no endpoint available ({'; '.join(failures)})")
            await trio.sleep(backoff)
            backoff = min(2 * backoff, _BACKOFF_MAX)

    async def _receive(self) -> Any:
        """The next response for this watch; :class:`_StreamLost` when resuming may help."""
        try:
            response = await self._stream.receive()
        except rpc.RpcError as raw:
            error = translate(raw)
            if isinstance(error, rpc.Unavailable):
                raise _StreamLost(str(error)) from None
            raise error from None
        if response is None:
            raise _StreamLost("the server ended the watch stream")
        return response

    async def next_batch(self) -> WatchBatch:
        """The next batch of events (or a progress notification).

        Raises :class:`trio.ClosedResourceError` once the watch has ended.
        """
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the watch has ended")
            if self._stream is None:
                await self._open()
            try:
                response = await self._receive()
            except _StreamLost:
                await self._close_stream()
                self._transport.failed(self._index)
                self.resumes += 1
                continue
            if response.watch_id != self._watch_id:
                continue
            if response.canceled:
                await self.aclose()
                raise _cancel_error(response)
            events = tuple(
                Event.from_pb(e)
                for e in response.events
                if e.kv.mod_revision >= self._next_revision
            )
            if events:
                self._next_revision = events[-1].revision + 1
            elif response.events or not self._spec.progress_notify:
                continue  # only repeats, or a progress notification nobody asked for
            return WatchBatch(header=Header.from_pb(response.header), events=events)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> WatchBatch:
        if self._closed:
            raise StopAsyncIteration
        return await self.next_batch()

    async def aclose(self) -> None:
        """End the watch (cancels its stream); leaving the ``async with`` does this."""
        self._closed = True
        await self._close_stream()


def _cancel_error(response: Any) -> rpc.RpcError:
    if response.compact_revision:
        return Compacted(
            f"watch start revision was compacted; history begins at revision "
            f"{response.compact_revision}",
            compact_revision=response.compact_revision,
        )
    return WatchCanceled(f"the store canceled the watch: {response.cancel_reason or 'no reason'}")


@asynccontextmanager
async def open_watch(
    transport: Transport, spec: WatchSpec, *, start_revision: int
) -> AsyncIterator[Watch]:
    """Create the watch (failing over as needed), yield it, cancel it when the block ends."""
    watch = Watch(transport, spec, start_revision=start_revision)
    await watch._open()
    try:
        yield watch
    finally:
        await watch.aclose()
