"""The watch cache: one store watch per resource, fanned out to every client watch.

Problem. Every controller, scheduler and node agent watches objects; a store watch per
client watch would multiply the store's work by the number of clients, and a slow client
must never hold up the store or the other clients.

Design (Kubernetes' cacher, etcd's watchable store). Per resource, :class:`WatchCache`
lists the resource's prefix once, then watches it from the list's revision, and keeps:

* ``state``: every object of the resource as of ``revision`` (key -> object);
* a bounded window of recent events, in revision order, each with the object before and
  after (``prev`` makes "stopped matching a selector" a DELETED event for that watcher).

Client watches are :class:`Watcher` cursors into the window, not queues: appending an
event wakes them, and each reads at its own pace. The writer (the store watch) never
waits for a reader. A reader that falls behind the window, or asks to start before it,
gets :class:`TooOld` ("too old resource version"): it must list again and watch from the
list's resourceVersion -- Kubernetes' 410 Gone. Trade-off: a cursor costs nothing while
it keeps up, but memory is bounded by the window, not by the slowest reader.

Window invariant: every event with revision > ``oldest`` is in the window, so a watch
from any resourceVersion >= ``oldest`` misses nothing. Evicting drops whole revisions and
raises ``oldest`` to the last revision dropped. A relist (after the store compacted past
the cache, which only happens when the store watch was down for long) empties the window
and sets ``oldest`` to the new list revision; watchers then see :class:`TooOld`.

Consistent reads (:meth:`WatchCache.consistent_list`). The cache lags the store by the
time an event takes to arrive, and with several API servers a client may write through
one and list through another. Before serving a list the cache asks the store, in one
linearizable read of its prefix (``keys_only``, ``limit=1``, sorted by mod_revision
descending), for the newest live key's mod_revision ``M``, the key count ``C`` and the
store revision ``R``. If ``M <= revision`` and ``C == len(state)``, no key that existed
at ``revision`` changed or vanished and none is newer, so ``state`` *is* the store's state
at ``R``: the list is served with resourceVersion ``R``. Otherwise the cache waits for its
watch to catch up and asks again; a prefix written to faster than that converges is listed
from the store instead. (etcd's progress requests would avoid the sort, but the
store client does not expose them.)
"""

from __future__ import annotations

import bisect
import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio

from actors.apiserver import objects, storage
from proto import rpc
from proto.k8s.kinds import KindInfo
from raftstore.client import (
    Client,
    Compacted,
    EventType,
    KeyValue,
    Sort,
    SortOrder,
    SortTarget,
    WatchBatch,
    prefix_end,
)

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 1000  # events kept for resuming watches
CONSISTENT_READ_TIMEOUT = 1.0  # how long a list waits for the cache to catch up
_RETRY_FIRST = 0.05
_RETRY_MAX = 2.0


class TooOld(rpc.OutOfRange):
    """A watch from before the cache's window: list again, then watch from the list."""


def too_old(requested: int, oldest: int) -> TooOld:
    return TooOld(
        f"too old resource version: {requested} (the oldest available is {oldest}); "
        f"list again and watch from the list's resourceVersion"
    )


class NotCaughtUp(Exception):
    """The cache did not prove itself level with the store in time (busy prefix): read
    the store instead."""


class EventKind(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class CacheEvent:
    """One change. ``obj`` is the object after it (for DELETED: its last state, with the
    deletion's revision as resourceVersion); ``prev`` the object before (None for ADDED)."""

    revision: int
    kind: EventKind
    key: bytes
    obj: Any
    prev: Any | None


class WatchCache:
    """The cached state and recent events of one resource. Run it with :meth:`run`.

    All fields are read and written from trio tasks of one run only (no locks). ``state``
    and ``revision`` change together, between two awaits, when a batch is applied.
    """

    def __init__(self, info: KindInfo, client: Client, *, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        self.info = info
        self.client = client
        self.window = window
        self.prefix = objects.prefix(info)
        self.state: dict[bytes, Any] = {}
        self.revision = 0  # every event up to this revision is applied to `state`
        self.oldest = 0  # watches from any revision >= oldest miss nothing
        self.synced = trio.Event()
        self._events: list[CacheEvent] = []
        self._first_seq = 0  # sequence number of _events[0]
        self._changed = trio.Event()

    # ------------------------------------------------------------------ feeding

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """List, then follow the store watch forever; started once the first list is in.

        Store outages are retried with backoff (resuming after ``revision``, so nothing
        is lost); a compacted resume point forces a relist.
        """
        started = False
        backoff = _RETRY_FIRST
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    if not started:
                        started = True
                        task_status.started()
                async with self.client.watch(
                    self.prefix,
                    prefix=True,
                    start_revision=self.revision + 1,
                    progress_notify=True,
                ) as watch:
                    backoff = _RETRY_FIRST
                    async for batch in watch:
                        self.apply(batch)
            except Compacted:
                log.warning("watch cache resource=%s compacted; relisting", self.info.resource)
                need_list = True
            except rpc.RpcError as exc:
                log.warning(
                    "watch cache resource=%s store error=%s; retrying in %.2fs",
                    self.info.resource,
                    exc,
                    backoff,
                )
                await trio.sleep(backoff)
                backoff = min(2 * backoff, _RETRY_MAX)

    async def _relist(self) -> None:
        result = await self.client.get(self.prefix, prefix=True)
        self.load(result.kvs, result.revision)

    def load(self, kvs: Iterable[KeyValue], revision: int) -> None:
        """Replace the state with a list taken at ``revision`` (and forget the window)."""
        self.state = {kv.key: storage.decode(self.info, kv.value, kv.mod_revision) for kv in kvs}
        self.revision = revision
        # Every current watcher has a gap now: moving the first sequence number past
        # theirs makes each of them fail with TooOld.
        self._first_seq += len(self._events) + 1
        self._events = []
        self.oldest = revision
        self.synced.set()
        self._wake()

    def apply(self, batch: WatchBatch) -> None:
        """Apply one batch of the store watch (in revision order, after ``revision``)."""
        if not batch.events:  # a progress notification: nothing newer for this prefix
            self.revision = max(self.revision, batch.revision)
            self._wake()
            return
        for event in batch.events:
            key = event.kv.key
            prev = self.state.get(key)
            if event.type is EventType.PUT:
                obj = storage.decode(self.info, event.kv.value, event.kv.mod_revision)
                self.state[key] = obj
                kind = EventKind.ADDED if prev is None else EventKind.MODIFIED
            else:
                if prev is None:
                    continue  # deleted before we ever saw it
                del self.state[key]
                obj = objects.copy(prev)
                obj.metadata.resource_version = str(event.revision)
                kind = EventKind.DELETED
            self._events.append(CacheEvent(event.revision, kind, key, obj, prev))
            self.revision = event.revision
        self._evict()
        self._wake()

    def _evict(self) -> None:
        excess = len(self._events) - self.window
        if excess <= 0:
            return
        last = self._events[excess - 1].revision
        while excess < len(self._events) and self._events[excess].revision == last:
            excess += 1  # drop whole revisions only
        del self._events[:excess]
        self._first_seq += excess
        self.oldest = last

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------ reading

    def get(self, key: bytes) -> Any | None:
        """The cached object at ``key`` (as of :attr:`revision`; perhaps behind the store).
        Shared with watchers: never mutate it."""
        return self.state.get(key)

    def objects(self, namespace: str = "") -> list[Any]:
        """The cached objects (of one namespace, or all), in key order."""
        want = objects.prefix(self.info, namespace)
        return [self.state[k] for k in sorted(self.state) if k.startswith(want)]

    async def consistent_list(self, namespace: str = "") -> tuple[list[Any], int]:
        """The objects as the store has them now, and the revision they are at.

        See the module doc. Waits for the cache to catch up; :class:`NotCaughtUp` if it
        does not within :data:`CONSISTENT_READ_TIMEOUT` (writes arriving faster than a
        store round trip can keep it one step behind).
        """
        await self.synced.wait()
        newest_first = Sort(target=SortTarget.MOD, order=SortOrder.DESCEND)
        with trio.move_on_after(CONSISTENT_READ_TIMEOUT):
            while True:
                probe = await self.client.get(
                    self.prefix,
                    range_end=prefix_end(self.prefix),
                    limit=1,
                    keys_only=True,
                    sort=newest_first,
                )
                newest = probe.kv.mod_revision if probe.kv is not None else 0
                if newest <= self.revision and probe.count == len(self.state):
                    return self.objects(namespace), max(probe.revision, self.revision)
                await self._changed.wait()
        raise NotCaughtUp(self.info.resource)

    def watch(self, resource_version: int | None) -> tuple[list[Any], Watcher]:
        """Start a watch after ``resource_version``.

        ``None`` means "from now, starting with the current state": the current objects
        are returned to be sent as ADDED, and the watcher follows from ``revision``.
        Raises :class:`TooOld` when events after ``resource_version`` are no longer kept.
        """
        if resource_version is None:
            snapshot = [self.state[k] for k in sorted(self.state)]
            return snapshot, Watcher(self, self._first_seq + len(self._events), self.revision)
        if resource_version < self.oldest:
            raise too_old(resource_version, self.oldest)
        index = bisect.bisect_right(self._events, resource_version, key=lambda e: e.revision)
        return [], Watcher(self, self._first_seq + index, resource_version)


class Watcher:
    """One client's position in a :class:`WatchCache`: a cursor, no buffer."""

    def __init__(self, cache: WatchCache, seq: int, after: int) -> None:
        self._cache = cache
        self._seq = seq
        self._after = after  # skip events at or before this revision
        self.revision = after  # every event up to here has been handed out

    async def next(self, *, timeout: float) -> list[CacheEvent]:
        """The next events (in revision order), or ``[]`` after ``timeout`` without any.

        After ``[]`` the watcher has seen everything up to :attr:`revision` (a bookmark).
        Raises :class:`TooOld` when the cache has dropped events this watcher needed.
        """
        cache = self._cache
        with trio.move_on_after(timeout):
            while True:
                if self._seq < cache._first_seq:
                    raise too_old(self.revision, cache.oldest)
                start = self._seq - cache._first_seq
                if start < len(cache._events):
                    batch = cache._events[start:]
                    self._seq += len(batch)
                    fresh = [e for e in batch if e.revision > self._after]
                    if fresh:
                        self.revision = max(self.revision, fresh[-1].revision)
                        return fresh
                    continue
                self.revision = max(self.revision, cache.revision)
                await cache._changed.wait()
        self.revision = max(self.revision, cache.revision)
        return []
