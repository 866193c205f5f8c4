"""Informers: list then watch one kind into a local cache, and tell handlers what changed.

Every control loop needs the same thing from the API server: the current objects of a
kind, kept current, without asking again for each decision. An :class:`Informer` lists
the kind once, files the objects in a :class:`~.cache.Cache`, then watches from the list's
resourceVersion and applies each event to the cache before calling the handlers. This is
client-go's reflector + shared informer, on trio.

Guarantees
    * **Synced gate.** :attr:`Informer.has_synced` turns true (and :meth:`~Informer.run`
      reports started) only after the first complete list is in the cache; a loop that
      waits for it never acts on a half-filled cache.
    * **No lost or duplicated handler calls across relists.** When the watch cannot resume
      -- the server has compacted past our revision (``Expired``), the stream broke, the
      server went quiet longer than ``idle_timeout`` -- the informer lists again and
      *diffs* the new list against the cache: ``on_add`` for objects it had not seen,
      ``on_update`` for those whose resourceVersion moved, ``on_delete`` (with the last
      state it knew) for those that are gone. An object whose resourceVersion did not
      change produces no call.
    * **Per-object order.** Handler calls for one object follow its revisions.
    * **Eventually consistent.** The cache lags the store by the watch's latency; handlers
      should enqueue keys (:func:`enqueue_on_change`) and let ``reconcile`` read the cache.

Failover: a broken stream is retried against the same server from the last revision
seen; if that fails too the informer lists again, and the client's list fails over to the
next API server. Retries back off (``backoff``) and reset after a healthy watch.

Handlers are plain functions called inline; they must not block. An exception in a
handler is logged and does not stop the informer. A handler added after the informer
has synced is first called with ``on_add`` for every object already cached, as client-go
does, so late subscribers see the same world.

:class:`InformerFactory` shares one informer per (kind, namespace, selectors) among the
loops of a process -- the controller manager runs a dozen controllers on one pod watch.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from google.protobuf.message import Message

from actors.client import ApiClient, ApiError, EventType, Expired, KindRef, kind_info
from actors.runtime import Backoff, BackoffPolicy

from .cache import Cache, IndexFunc, object_key

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "Handlers",
    "Informer",
    "InformerFactory",
    "enqueue_on_change",
]

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 45.0
"""Seconds without any event or bookmark before a watch is presumed dead (the API
server sends a bookmark every 10 s on a quiet watch)."""

DEFAULT_BACKOFF = BackoffPolicy(
    initial=0.1, factor=2.0, max_delay=5.0, jitter=0.2, reset_after=10.0
)


@dataclass(frozen=True)
class Handlers:
    """What to call on a change; each is optional and must return quickly."""

    on_add: Callable[[Any], None] | None = None
    on_update: Callable[[Any, Any], None] | None = None
    on_delete: Callable[[Any], None] | None = None


def enqueue_on_change(
    add: Callable[[str], None], key: Callable[[Any], str | None] = object_key
) -> Handlers:
    """Handlers that call ``add(key(obj))`` on every change (``key`` may return None to
    skip) -- the usual wiring of an informer to a work queue."""

    def one(obj: Any) -> None:
        k = key(obj)
        if k is not None:
            add(k)

    return Handlers(on_add=one, on_update=lambda _old, new: one(new), on_delete=one)


class Informer:
    """List and watch ``kind`` (optionally one namespace / selected objects) into :attr:`cache`."""

    def __init__(
        self,
        api: ApiClient,
        kind: KindRef,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        indexers: Mapping[str, IndexFunc] | None = None,
        resync_period: float | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
    ) -> None:
        self.api = api
        self.kind = kind_info(kind)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache = Cache(indexers)
        self.resync_period = resync_period
        self.idle_timeout = idle_timeout
        self._backoff = Backoff(backoff, rng=random.Random())
        self._handlers: list[Handlers] = []
        self._synced = trio.Event()
        self.resource_version = ""
        self.lists = 0
        """How many times the informer listed (1 + relists); for tests and metrics."""

    def __repr__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        sel = (
            f" [{self.label_selector}|{self.field_selector}]"
            if self.label_selector or self.field_selector
            else ""
        )
        return f"<Informer {self.kind.resource}{where}{sel}>"

    # ------------------------------------------------------------------ public

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def add_handler(self, handlers: Handlers) -> None:
        self._handlers.append(handlers)
        if self.has_synced and handlers.on_add is not None:
            for obj in self.cache:
                self._call(handlers.on_add, obj)

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        self.cache.add_indexer(name, func)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """List, then watch forever; ``started`` once the first list is in the cache."""
        async with trio.open_nursery() as nursery:
            await self._list_until_done()
            self._synced.set()
            task_status.started()
            if self.resync_period:
                nursery.start_soon(self._resync_loop, self.resync_period)
            await self._watch_forever()

    # ------------------------------------------------------------------ list

    async def _list_until_done(self) -> None:
        while True:
            try:
                await self._relist()
                return
            except ApiError as exc:
                delay = self._backoff.next_delay()
                logger.warning("%r: list failed (%s); retrying in %.1fs", self, exc, delay)
                await trio.sleep(delay)

    async def _relist(self) -> None:
        page = await self.api.list_all(
            self.kind,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            limit=500,
        )
        self.lists += 1
        seen: set[str] = set()
        for obj in page.items:
            key = object_key(obj)
            seen.add(key)
            self._apply_upsert(obj)
        for key in self.cache.keys():
            if key not in seen:
                old = self.cache.remove(key)
                self._notify_delete(old)
        self.resource_version = page.resource_version

    # ------------------------------------------------------------------ watch

    async def _watch_forever(self) -> None:
        need_list = False
        while True:
            if need_list:
                await self._list_until_done()
                need_list = False
            try:
                healthy = await self._watch_once()
            except Expired:
                logger.info(
                    "%r: resourceVersion %s is too old; listing again", self, self.resource_version
                )
                need_list = True
                continue
            except ApiError as exc:
                delay = self._backoff.next_delay()
                logger.warning("%r: watch failed (%s); listing again in %.1fs", self, exc, delay)
                await trio.sleep(delay)
                need_list = True
                continue
            if healthy:
                self._backoff.reset()
            else:
                # Ended at once or went quiet: the server may be gone; let list fail over.
                await trio.sleep(self._backoff.next_delay())
                need_list = True

    async def _watch_once(self) -> bool:
        """Watch until the stream ends; True if it delivered anything before ending."""
        delivered = False
        async with self.api.watch(
            self.kind,
            namespace=self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            allow_bookmarks=True,
        ) as events:
            iterator = events.__aiter__()
            while True:
                with trio.move_on_after(self.idle_timeout) as idle:
                    try:
                        event = await iterator.__anext__()
                    except StopAsyncIteration:
                        return delivered
                if idle.cancelled_caught:
                    logger.warning(
                        "%r: no event or bookmark for %.0fs; reconnecting", self, self.idle_timeout
                    )
                    return False
                delivered = True
                self._apply_event(event.type, event.object)

    def _apply_event(self, type_: EventType, obj: Message) -> None:
        rv = str(obj.metadata.resource_version)
        if type_ is EventType.BOOKMARK:
            self.resource_version = rv
            return
        if type_ is EventType.DELETED:
            self.cache.remove(object_key(obj))
            self._notify_delete(obj)
        else:
            self._apply_upsert(obj)
        if rv:
            self.resource_version = rv

    def _apply_upsert(self, obj: Message) -> None:
        old = self.cache.put(obj)
        if old is None:
            for h in self._handlers:
                if h.on_add is not None:
                    self._call(h.on_add, obj)
        elif old.metadata.resource_version != obj.metadata.resource_version:
            for h in self._handlers:
                if h.on_update is not None:
                    self._call(h.on_update, old, obj)

    def _notify_delete(self, obj: Any) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    async def _resync_loop(self, period: float) -> None:
        while True:
            await trio.sleep(period)
            for obj in self.cache:
                for h in self._handlers:
                    if h.on_update is not None:
                        self._call(h.on_update, obj, obj)

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            logger.exception("%r: event handler %r failed", self, func)


class InformerFactory:
    """One informer per (kind, namespace, selectors), shared by every loop of a process.

    Ask for informers with :meth:`informer`, then ``await nursery.start(factory.run)``:
    it starts them all and reports started once every one has synced. Informers asked
    for after ``run`` started are started at once.
    """

    def __init__(self, api: ApiClient, *, resync_period: float | None = None) -> None:
        self.api = api
        self.resync_period = resync_period
        self._informers: dict[tuple[str, str | None, str, str], Informer] = {}
        self._nursery: trio.Nursery | None = None

    def informer(
        self,
        kind: KindRef,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Informer:
        info = kind_info(kind)
        key = (info.kind, namespace or None, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.api,
                info,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_period=self.resync_period,
            )
            self._informers[key] = informer
            if self._nursery is not None:
                self._nursery.start_soon(informer.run)
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    @property
    def has_synced(self) -> bool:
        return all(i.has_synced for i in self._informers.values())

    async def wait_synced(self) -> None:
        for informer in list(self._informers.values()):
            await informer.wait_synced()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for informer in list(self._informers.values()):
                nursery.start_soon(informer.run)
            await self.wait_synced()
            task_status.started()
            await trio.sleep(math.inf)
