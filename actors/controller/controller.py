"""The controller scaffold: informers enqueue keys, workers reconcile them.

A controller here is four parts, each with one job:

* informers (:mod:`.informer`) keep a cache of the kinds the loop reads;
* their handlers only compute a key and add it to the work queue (:meth:`Controller.watch`);
* workers (:func:`~.workqueue.run_workers`) take keys off the queue, one worker per key
  at a time, and call ``reconcile(key)``;
* ``reconcile`` reads the *latest cached* state for the key, makes the world match the
  spec (idempotently: running it twice changes nothing the second time), and returns.

What ``reconcile`` returns or raises steers the key:

* ``None`` -- done; the key's backoff is forgotten.
* a number ``t`` -- done for now, look again in ``t`` seconds (a deadline to check, a
  lease to renew); the key is re-added after ``t``.
* :class:`~.workqueue.TransientError` or any unexpected exception -- retried with
  per-key exponential backoff.
* :class:`~.workqueue.PermanentError` -- the spec cannot be satisfied as written: a
  Warning Event with the error's reason and message is recorded on the object (when the
  controller has a recorder and can find the object), and the key is not retried until
  the object changes.

Workers start only after every watched informer has synced, so no loop acts on a
half-filled cache (a ReplicaSet controller that saw 0 of its 3 pods would create 3 more).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from .cache import object_key, split_key
from .events import WARNING, EventRecorder
from .informer import Informer, enqueue_on_change
from .workqueue import DEFAULT_ITEM_BACKOFF, PermanentError, RateLimit, WorkQueue, run_workers

__all__ = ["Controller", "Reconcile"]

logger = logging.getLogger(__name__)

Reconcile = Callable[[str], Awaitable[float | None]]


class Controller:
    """One control loop named ``name``; see the module doc."""

    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        *,
        workers: int = 1,
        recorder: EventRecorder | None = None,
        subject: Informer | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        """``subject`` is the informer of the kind the keys name (for Events on it)."""
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self.recorder = recorder
        self.subject = subject
        self.queue: WorkQueue[str] = WorkQueue(backoff=DEFAULT_ITEM_BACKOFF, rate_limit=rate_limit)
        self._informers: list[Informer] = []
        self.syncs = 0
        if subject is not None:
            self.watch(subject)

    def __repr__(self) -> str:
        return f"<Controller {self.name}>"

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    def watch(self, informer: Informer, key: Callable[[Any], str | None] = object_key) -> None:
        """Enqueue ``key(obj)`` on every change ``informer`` sees; wait for it to sync."""
        if informer not in self._informers:
            self._informers.append(informer)
        informer.add_handler(enqueue_on_change(self.enqueue, key))

    def depends_on(self, informers: Sequence[Informer]) -> None:
        """Wait for ``informers`` to sync before reconciling (without enqueueing from them)."""
        for informer in informers:
            if informer not in self._informers:
                self._informers.append(informer)

    @property
    def has_synced(self) -> bool:
        return all(i.has_synced for i in self._informers)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Wait for the informers, then reconcile until cancelled."""
        for informer in self._informers:
            await informer.wait_synced()
        logger.info("%s: caches synced, starting %d worker(s)", self.name, self.workers)
        await run_workers(self.queue, self._sync, workers=self.workers, task_status=task_status)
        await trio.sleep(math.inf)  # pragma: no cover - the queue is never shut down

    async def _sync(self, key: str) -> None:
        self.syncs += 1
        try:
            again = await self.reconcile(key)
        except PermanentError as exc:
            self._record(key, exc)
            raise
        if again is not None:
            self.queue.add_after(key, max(0.0, float(again)))

    def _record(self, key: str, exc: PermanentError) -> None:
        if self.recorder is None or self.subject is None:
            return
        namespace, name = split_key(key)
        obj = self.subject.cache.get_by_name(namespace, name)
        if obj is not None:
            self.recorder.event(obj, WARNING, exc.reason, str(exc))
