"""etcd's Watch service: many watches multiplexed on one bidirectional stream.

Each watch is a trio task that *pulls* from the store's event history: it remembers the
next revision it owes its client, reads every event from there up to the current
revision under the state lock, sends them, and sleeps until the next apply. So:

* events reach a watch in revision order, exactly once, with no gap — a watch that falls
  behind simply reads more history on its next turn;
* a writer never waits for a watcher: applying only sets an event;
* a watch whose next revision was compacted away is cancelled with
  ``compact_revision`` set, as etcd does, and the client decides (resume or relist).

Responses of all watches on a stream go through one bounded channel to one sender task;
a slow client therefore slows only its own watches (they wait to send), never the store.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from functools import partial

import trio

from proto import rpc
from proto.etcdserverpb import rpc_pb2
from proto.mvccpb import kv_pb2
from raftstore.mvcc import MvccStore
from raftstore.mvcc.errors import CompactedError
from raftstore.server.member import Member

log = logging.getLogger(__name__)

MAX_EVENTS_PER_RESPONSE = 1000
PROGRESS_INTERVAL = 10.0  # etcd's default progress-notify interval (seconds)
_NO_WATCH = -1  # etcd's watch id for responses that belong to no watch


@dataclass
class _Watch:
    id: int
    request: rpc_pb2.WatchCreateRequest
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


def _keep(event: kv_pb2.Event, request: rpc_pb2.WatchCreateRequest) -> bool:
    if event.type == kv_pb2.Event.PUT:
        return rpc_pb2.WatchCreateRequest.NOPUT not in request.filters
    return rpc_pb2.WatchCreateRequest.NODELETE not in request.filters


def _pull(
    start: int, request: rpc_pb2.WatchCreateRequest, store: MvccStore
) -> tuple[list[kv_pb2.Event], int]:
    """The events a watch owes from ``start`` on, and the revision they run up to."""
    if start > store.revision:
        return [], store.revision
    events = store.events_since(start, request.key, request.range_end, prev_kv=request.prev_kv)
    return events, store.revision


def _batches(events: list[kv_pb2.Event]) -> list[list[kv_pb2.Event]]:
    """Split into responses of at most MAX_EVENTS_PER_RESPONSE, never inside one revision."""
    batches: list[list[kv_pb2.Event]] = [[]]
    for _, group in itertools.groupby(events, key=lambda e: e.kv.mod_revision):
        items = list(group)
        if batches[-1] and len(batches[-1]) + len(items) > MAX_EVENTS_PER_RESPONSE:
            batches.append([])
        batches[-1].extend(items)
    return [b for b in batches if b]


class WatchService:
    def __init__(self, member: Member, *, progress_interval: float = PROGRESS_INTERVAL) -> None:
        self.member = member
        self.progress_interval = progress_interval

    async def Watch(
        self, requests: rpc.RequestStream[rpc_pb2.WatchRequest], ctx: rpc.ServerContext
    ) -> None:
        send, outbox = trio.open_memory_channel[rpc_pb2.WatchResponse](64)
        watches: dict[int, _Watch] = {}
        next_id = itertools.count()

        async def sender() -> None:
            async for response in outbox:
                await ctx.send(response)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            async for request in requests:
                kind = request.WhichOneof("request_union")
                if kind == "create_request":
                    create = request.create_request
                    watch_id = create.watch_id
                    if watch_id == 0:
                        watch_id = next(i for i in next_id if i not in watches)
                    if watch_id in watches:
                        await send.send(
                            rpc_pb2.WatchResponse(
                                header=self.member.header(),
                                watch_id=watch_id,
                                created=True,
                                canceled=True,
                                cancel_reason="etcdserver: mvcc: watcher ID in use",
                            )
                        )
                        continue
                    watch = _Watch(id=watch_id, request=create)
                    watches[watch_id] = watch
                    start = await self._created(watch, send)
                    nursery.start_soon(self._run, watch, start, send.clone(), watches)
                elif kind == "cancel_request":
                    watch_id = request.cancel_request.watch_id
                    cancelled = watches.pop(watch_id, None)
                    if cancelled is not None:
                        cancelled.scope.cancel()
                        await send.send(
                            rpc_pb2.WatchResponse(
                                header=self.member.header(), watch_id=watch_id, canceled=True
                            )
                        )
                elif kind == "progress_request":
                    await send.send(
                        rpc_pb2.WatchResponse(header=self.member.header(), watch_id=_NO_WATCH)
                    )
            # The client finished sending requests; its watches live until it hangs up.
            await trio.sleep_forever()

    async def _created(
        self, watch: _Watch, send: trio.MemorySendChannel[rpc_pb2.WatchResponse]
    ) -> int:
        """Acknowledge a new watch; the first revision it owes the client."""
        current = self.member.revision
        await send.send(
            rpc_pb2.WatchResponse(
                header=self.member.header(current), watch_id=watch.id, created=True
            )
        )
        start = watch.request.start_revision
        return start if start > 0 else current + 1

    async def _run(
        self,
        watch: _Watch,
        next_revision: int,
        send: trio.MemorySendChannel[rpc_pb2.WatchResponse],
        watches: dict[int, _Watch],
    ) -> None:
        request = watch.request
        with watch.scope, send:
            last_sent = trio.current_time()
            while True:
                changed = self.member.changed()
                try:
                    events, current = self.member.read(partial(_pull, next_revision, request))
                except CompactedError as exc:
                    watches.pop(watch.id, None)
                    await send.send(
                        rpc_pb2.WatchResponse(
                            header=self.member.header(),
                            watch_id=watch.id,
                            canceled=True,
                            compact_revision=exc.compact_revision,
                            cancel_reason="etcdserver: mvcc: required revision has been compacted",
                        )
                    )
                    return
                kept = [e for e in events if _keep(e, request)]
                for batch in _batches(kept):
                    await send.send(
                        rpc_pb2.WatchResponse(
                            header=self.member.header(current), watch_id=watch.id, events=batch
                        )
                    )
                    last_sent = trio.current_time()
                next_revision = max(next_revision, current + 1)
                with trio.move_on_at(last_sent + self.progress_interval):
                    await changed.wait()
                    continue
                if request.progress_notify:
                    await send.send(
                        rpc_pb2.WatchResponse(header=self.member.header(), watch_id=watch.id)
                    )
                last_sent = trio.current_time()
