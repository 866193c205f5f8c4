"""A de-duplicating, rate-limited work queue of keys, and the workers that drain it.

A controller's event handlers do not reconcile anything: they compute a key (usually
``namespace/name``) and add it to a queue. Workers take keys off the queue and call a
level-triggered ``sync(key)`` that reads the latest state and makes the world match it.
Because ``sync`` looks at the *current* state, ten events about one object need one sync,
not ten -- so the queue holds each key at most once -- and two syncs of one object at the
same time could only race each other -- so a key is never handed to two workers at once.
This is client-go's ``workqueue`` (a ``Type`` wrapped in a delaying and a rate-limiting
queue) rebuilt on trio.

Guarantees
    * **De-duplication.** A key that is waiting (added, not yet handed out by :meth:`get`)
      is held once however often it is added.
    * **No concurrent processing of one key.** Between :meth:`WorkQueue.get` returning a
      key and :meth:`WorkQueue.done` for it, the key is *processing*; adding it again
      marks it dirty and it is queued (once) when ``done`` is called, never handed to a
      second caller of ``get`` meanwhile.
    * **FIFO among ready keys.** Keys are handed out in the order they became ready: the
      time of :meth:`~WorkQueue.add`, the due time of :meth:`~WorkQueue.add_after` (ties
      in call order), or the time of ``done`` for a key re-added while processing. A key
      that is added again while it waits keeps its place.
    * **Graceful drain.** After :meth:`~WorkQueue.shut_down`, new adds are ignored and
      delayed keys that are not yet due are dropped, but keys already ready are still
      handed out; ``get`` raises :class:`QueueShutDown` once none is left.

Rate limiting (:meth:`~WorkQueue.add_rate_limited`)
    The delay is the larger of two limiters, as in client-go's default controller rate
    limiter:

    * per key, exponential backoff -- by default 5 ms doubling up to 1000 s -- using the
      actor runtime's :class:`~actors.runtime.BackoffPolicy`; :meth:`~WorkQueue.forget`
      starts a key over and :meth:`~WorkQueue.num_requeues` counts its failures;
    * optionally, one token bucket for the whole queue (:class:`RateLimit`, e.g. 10 qps
      with a burst of 100) so that many failing keys cannot hammer the API server
      together. A request beyond the burst *reserves* a future token, like Go's
      ``rate.Limiter.Reserve``: the n-th request past the burst waits ``n / qps``.

Design notes
    * There is no background timer task: waiting callers of ``get`` sleep until the
      earliest due time of a delayed key (or until woken), and every operation first
      promotes the delayed keys that are due. So the queue needs no nursery and can be
      created anywhere; all of it must be used from inside one trio run, and all times
      come from trio's clock (tests run on ``autojump_clock``).
    * Waiting callers of ``get`` share one ``trio.Event`` that is replaced whenever the
      queue changes; each re-checks the queue. With a handful of workers per queue this is
      simpler than per-waiter wake-ups and costs nothing that matters.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from actors.runtime import Backoff, BackoffPolicy

__all__ = [
    "DEFAULT_ITEM_BACKOFF",
    "PermanentError",
    "QueueShutDown",
    "RateLimit",
    "SyncError",
    "TransientError",
    "WorkQueue",
    "WorkQueueError",
    "run_workers",
]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

DEFAULT_ITEM_BACKOFF = BackoffPolicy(initial=0.005, factor=2.0, max_delay=1000.0)
"""client-go's default per-item limiter: 5 ms, doubling, capped at 1000 s, no jitter."""


class WorkQueueError(Exception):
    """Base class of the errors the work queue raises."""


class QueueShutDown(WorkQueueError):
    """The queue was shut down and every ready key has been handed out."""


class SyncError(Exception):
    """Base class of the errors a ``sync`` function raises to steer :func:`run_workers`."""


class TransientError(SyncError):
    """Retry later: the key is re-added with rate-limited backoff."""


class PermanentError(SyncError):
    """Do not retry: the key's backoff is forgotten and the error logged.

    The key is processed again only when something adds it again (the object changed).
    ``reason`` is a CamelCase word for the Event a controller records about it.
    """

    def __init__(self, message: str, *, reason: str = "SyncFailed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """An overall token bucket: ``qps`` tokens a second, at most ``burst`` saved up."""

    qps: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.qps) and self.qps > 0):
            raise ValueError(f"qps must be a finite number > 0, not {self.qps!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"burst must be an int >= 1, not {self.burst!r}")


class _TokenBucket:
    """Reservations against a :class:`RateLimit`; tokens may go negative (a debt)."""

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit
        self._tokens = float(limit.burst)
        self._last: float | None = None

    def reserve(self, now: float) -> float:
        """Take one token; return how long from ``now`` until it is really available."""
        if self._last is not None:
            refill = (now - self._last) * self._limit.qps
            self._tokens = min(float(self._limit.burst), self._tokens + refill)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._limit.qps


class WorkQueue(Generic[K]):
    """A de-duplicating, delaying, rate-limited FIFO of keys; see the module docstring.

    Every method must be called from inside the trio run that uses the queue.
    """

    # Invariants (checked by _check_invariants in tests):
    #   * _dirty holds exactly the keys that need processing: every key in _queue, and
    #     keys re-added while processing (in _processing, not in _queue);
    #   * _queue holds no duplicates and no key in _processing;
    #   * _delayed maps a key to its live heap entry (due, seq); other heap entries are
    #     stale and skipped.

    def __init__(
        self,
        *,
        backoff: BackoffPolicy = DEFAULT_ITEM_BACKOFF,
        rate_limit: RateLimit | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if backoff.jitter and rng is None:
            raise ValueError("a jittered backoff needs an rng (pass random.Random(seed))")
        self._backoff_policy = backoff
        self._rng = rng
        self._bucket = _TokenBucket(rate_limit) if rate_limit is not None else None
        self._failures: dict[K, Backoff] = {}

        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._heap: list[tuple[float, int, K]] = []
        self._delayed: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._shutting_down = False
        self._changed = trio.Event()

    # -- the basic queue ------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Mark ``key`` as needing processing; see the de-duplication guarantee.

        Ignored once the queue is shutting down.
        """
        self._promote_due()
        self._insert(key)

    def done(self, key: K) -> None:
        """Finish processing ``key``; if it was added meanwhile, queue it (once) now."""
        self._promote_due()
        try:
            self._processing.remove(key)
        except KeyError:
            raise ValueError(f"done({key!r}) for a key that is not being processed") from None
        if key in self._dirty:
            self._queue.append(key)
        self._notify()

    async def get(self) -> K:
        """Wait for a ready key, mark it processing and return it.

        The caller must call :meth:`done` with the key when finished (``run_workers``
        does). Raises :class:`QueueShutDown` once the queue is shut down and drained.
        """
        await trio.lowlevel.checkpoint()
        while True:
            self._promote_due()
            if self._queue:
                key = self._queue.popleft()
                self._dirty.discard(key)
                self._processing.add(key)
                return key
            if self._shutting_down:
                raise QueueShutDown("the work queue is shut down and drained")
            changed = self._changed
            with trio.move_on_at(self._heap[0][0] if self._heap else math.inf):
                await changed.wait()

    def __len__(self) -> int:
        """How many keys are ready to be handed out (not processing, not delayed)."""
        self._promote_due()
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shut_down(self) -> None:
        """Stop accepting keys; ``get`` hands out the ready ones, then raises.

        Delayed keys that are not yet due are dropped. Idempotent.
        """
        self._promote_due()
        self._shutting_down = True
        self._heap.clear()
        self._delayed.clear()
        self._notify()

    async def wait_drained(self) -> None:
        """Wait until no key is ready, delayed or processing (e.g. after :meth:`shut_down`)."""
        await trio.lowlevel.checkpoint()
        while self._queue or self._processing or self._delayed:
            changed = self._changed
            with trio.move_on_at(self._heap[0][0] if self._heap else math.inf):
                await changed.wait()
            self._promote_due()

    # -- delays and rate limiting ---------------------------------------------------------

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (at once if ``delay <= 0``).

        A key already waiting for a later time is moved up; for an earlier time, the
        earlier one stands.
        """
        if math.isnan(delay):
            raise ValueError("delay must be a number, not nan")
        self._promote_due()
        if self._shutting_down:
            return
        if delay <= 0:
            self._insert(key)
            return
        due = trio.current_time() + delay
        current = self._delayed.get(key)
        if current is not None and current[0] <= due:
            return
        entry = (due, next(self._seq))
        self._delayed[key] = entry
        heapq.heappush(self._heap, (*entry, key))
        self._notify()  # waiting getters recompute how long to sleep

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after its backoff delay (and the overall token bucket's, if any)."""
        delay = self.when(key)
        self.add_after(key, delay)

    def when(self, key: K) -> float:
        """The delay :meth:`add_rate_limited` would use now; counts as one failure."""
        backoff = self._failures.get(key)
        if backoff is None:
            backoff = self._failures[key] = Backoff(self._backoff_policy, rng=self._rng)
        delay = backoff.next_delay()
        if self._bucket is not None:
            delay = max(delay, self._bucket.reserve(trio.current_time()))
        return delay

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff (it synced successfully, or will never be retried)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        """How many rate-limited re-adds ``key`` has had since it was last forgotten."""
        backoff = self._failures.get(key)
        return 0 if backoff is None else backoff.attempt

    # -- internals ------------------------------------------------------------------------

    def _insert(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued by done()
        self._queue.append(key)
        self._notify()

    def _promote_due(self) -> None:
        if not self._heap:
            return
        now = trio.current_time()
        while self._heap:
            due, seq, key = self._heap[0]
            live = self._delayed.get(key) == (due, seq)
            if live and due > now:
                break
            heapq.heappop(self._heap)
            if live:
                del self._delayed[key]
                self._insert(key)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _check_invariants(self) -> None:
        assert len(set(self._queue)) == len(self._queue), "duplicate key in the queue"
        assert not set(self._queue) & self._processing, "a processing key is queued"
        assert set(self._queue) <= self._dirty, "a queued key is not dirty"
        assert self._dirty - set(self._queue) <= self._processing, "a dirty key is lost"
        for key, (due, seq) in self._delayed.items():
            assert (due, seq, key) in self._heap, "a delayed key has no heap entry"


async def run_workers(
    queue: WorkQueue[K],
    sync: Callable[[K], Awaitable[None]],
    *,
    workers: int,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Process keys from ``queue`` with ``workers`` concurrent tasks until it shuts down.

    Each worker takes a key, awaits ``sync(key)`` and then:

    * on success, :meth:`~WorkQueue.forget` s the key's backoff;
    * on :class:`TransientError`, re-adds it with :meth:`~WorkQueue.add_rate_limited`;
    * on :class:`PermanentError`, forgets it and logs the error (no retry);
    * on any other ``Exception``, logs it with its traceback and retries like a
      transient error (as client-go does: an unknown error is assumed to be passing).

    ``done`` is always called, so a key is never processed by two workers at once (the
    queue guarantees it). Returns once the queue is shut down and every worker finished
    its key; cancelling it cancels the syncs in flight. ``task_status.started()`` is
    called once the workers are running.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers!r}")

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            try:
                await sync(key)
            except TransientError as exc:
                logger.info("sync of %r failed, will retry: %s", key, exc)
                queue.add_rate_limited(key)
            except PermanentError as exc:
                logger.error("sync of %r failed permanently, not retrying: %s", key, exc)
                queue.forget(key)
            except Exception:
                logger.exception("sync of %r raised an unexpected error, will retry", key)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
        task_status.started()
