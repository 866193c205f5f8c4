"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

The problem
    Pending pods arrive in bursts; some fit nowhere for now. The scheduler must try the
    most important pod first, must not spin on a pod that cannot fit, and must try it
    again promptly once the cluster changes in a way that could help -- without
    retrying every waiting pod on every change.

The design (Kubernetes' ``PriorityQueue``: three sets)
    * **active** -- pods ready to be tried, highest ``spec.priority`` first, then oldest
      (``creationTimestamp``), then first queued. :meth:`SchedulingQueue.pop` waits for one.
    * **backoff** -- pods that failed recently, each waiting out its own backoff: 1 s after
      its first attempt, doubling per attempt up to 10 s (Kubernetes'
      ``podInitialBackoffSeconds`` / ``podMaxBackoffSeconds``). A pod moves to active
      when its backoff expires.
    * **unschedulable** -- pods no node fitted, with the names of the filter plugins that
      rejected nodes. :meth:`SchedulingQueue.move` (a :class:`~.events.ClusterEvent`)
      moves those the event could help -- to backoff if their backoff has not expired
      yet, else to active. Any pod left here for ``max_unschedulable`` seconds (default
      60 s; Kubernetes' ``podMaxInUnschedulablePodsDuration`` is 5 min) goes back too, in
      case an event was missed.

    A pod that fails for another reason (a bind error) goes straight to backoff
    (:meth:`~SchedulingQueue.requeue_backoff`).

Guarantees
    * Each pod is in at most one set, once; a popped pod is in none until requeued.
    * No background task: ``pop`` sleeps until the earliest backoff expiry or
      unschedulable deadline (or until woken by a change) and promotes what is due, so
      backoff times are exact on trio's clock (tests use ``autojump_clock``).
    * Use from one trio run only.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from .events import ClusterEvent

__all__ = [
    "DEFAULT_INITIAL_BACKOFF",
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_MAX_UNSCHEDULABLE",
    "QueuedPod",
    "SchedulingQueue",
]

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_MAX_UNSCHEDULABLE = 60.0

_ACTIVE, _BACKOFF, _UNSCHEDULABLE = "active", "backoff", "unschedulable"


@dataclass(slots=True, eq=False)
class QueuedPod:
    """A pod's place in the queue; it travels with the pod through every set."""

    key: str
    priority: int = 0
    created: float = 0.0
    seq: int = 0
    attempts: int = 0
    """How many times :meth:`SchedulingQueue.pop` handed it out."""
    queued_at: float = 0.0
    """trio time it first entered the queue (for end-to-end latency)."""
    backoff_until: float = 0.0
    since: float = 0.0
    """trio time it entered its current set."""
    rejected_by: frozenset[str] = field(default_factory=frozenset)


class SchedulingQueue:
    """Active, backoff and unschedulable pods; see the module doc."""

    def __init__(
        self,
        *,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_unschedulable: float = DEFAULT_MAX_UNSCHEDULABLE,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        for name, value in (
            ("initial_backoff", initial_backoff),
            ("max_backoff", max_backoff),
            ("max_unschedulable", max_unschedulable),
        ):
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if max_backoff < initial_backoff:
            raise ValueError(
                f"max_backoff ({max_backoff!r}) must be at least initial_backoff "
                f"({initial_backoff!r})"
            )
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._clock = clock
        self._seq = itertools.count()
        # key -> (set, pod, token). Heaps keep stale entries after a delete, a move or a
        # reorder; an entry is live only while _where[key] holds its token.
        self._where: dict[str, tuple[str, QueuedPod, int]] = {}
        self._active: list[tuple[int, float, int, int, QueuedPod]] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._unschedulable: dict[str, QueuedPod] = {}  # in order of arrival (since)
        self._changed = trio.Event()

    # ------------------------------------------------------------------ reads

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def where(self, key: str) -> str | None:
        """``"active"``, ``"backoff"``, ``"unschedulable"`` or None."""
        entry = self._where.get(key)
        return None if entry is None else entry[0]

    @property
    def counts(self) -> dict[str, int]:
        counts = {_ACTIVE: 0, _BACKOFF: 0, _UNSCHEDULABLE: 0}
        for state, _, _ in self._where.values():
            counts[state] += 1
        return counts

    def backoff_duration(self, attempts: int) -> float:
        """``initial * 2 ** (attempts - 1)``, at most ``max_backoff``."""
        if attempts <= 1:
            return self.initial_backoff
        exponent = min(attempts - 1, 64)
        return min(self.max_backoff, self.initial_backoff * 2.0**exponent)

    # ------------------------------------------------------------------ pods come and go

    def add(self, key: str, *, priority: int = 0, created: float = 0.0) -> None:
        """A pending pod appeared: queue it as active (an already queued pod is updated)."""
        if key in self._where:
            self.update(key, priority=priority, created=created, changed=False)
            return
        now = self._clock()
        pod = QueuedPod(key, priority, created, next(self._seq), queued_at=now)
        self._push_active(pod, now)

    def update(
        self, key: str, *, priority: int = 0, created: float = 0.0, changed: bool = True
    ) -> None:
        """A queued pod changed. ``changed``: in a way that could make it fit (its spec or
        labels), so an unschedulable pod is retried; a status-only update is not."""
        entry = self._where.get(key)
        if entry is None:
            self.add(key, priority=priority, created=created)
            return
        state, pod, _ = entry
        reorder = pod.priority != priority or pod.created != created
        pod.priority, pod.created = priority, created
        if state == _ACTIVE and reorder:
            self._push_active(pod, pod.since)
        elif state == _UNSCHEDULABLE and changed:
            del self._unschedulable[key]
            self._release(pod, self._clock())

    def delete(self, key: str) -> None:
        """The pod is gone, bound or no longer ours: forget it."""
        entry = self._where.pop(key, None)
        if entry is not None and entry[0] == _UNSCHEDULABLE:
            del self._unschedulable[key]

    # ------------------------------------------------------------------ scheduling

    async def pop(self) -> QueuedPod:
        """The next active pod, waiting for one; counts an attempt.

        Always a checkpoint (before taking the pod, so a cancellation never loses one):
        a scheduler draining a burst still lets informers and binds run between pods.
        """
        await trio.lowlevel.checkpoint()
        while True:
            now = self._clock()
            self._promote(now)
            while self._active:
                _, _, _, token, pod = heapq.heappop(self._active)
                if self._live(pod.key, token):
                    del self._where[pod.key]
                    pod.attempts += 1
                    return pod
            wake = self._next_deadline()
            changed = self._changed
            with trio.move_on_at(wake):
                await changed.wait()

    def requeue_unschedulable(self, pod: QueuedPod, rejected_by: frozenset[str]) -> None:
        """No node fitted ``pod`` (just popped): wait for an event that could help."""
        now = self._clock()
        pod.rejected_by = rejected_by
        pod.backoff_until = now + self.backoff_duration(pod.attempts)
        pod.since = now
        self._where[pod.key] = (_UNSCHEDULABLE, pod, next(self._seq))
        self._unschedulable[pod.key] = pod
        self._wake()

    def requeue_backoff(self, pod: QueuedPod) -> None:
        """``pod`` (popped) failed for another reason: retry after its backoff."""
        now = self._clock()
        pod.rejected_by = frozenset()
        pod.backoff_until = now + self.backoff_duration(pod.attempts)
        self._push_backoff(pod, now)

    def move(self, event: ClusterEvent) -> int:
        """Retry the unschedulable pods ``event`` could help; how many moved."""
        if not self._unschedulable:
            return 0
        now = self._clock()
        moving = [p for p in self._unschedulable.values() if event.helps(p.rejected_by)]
        for pod in moving:
            del self._unschedulable[pod.key]
            self._release(pod, now)
        return len(moving)

    # ------------------------------------------------------------------ internals

    def _push_active(self, pod: QueuedPod, now: float) -> None:
        pod.since = now
        token = next(self._seq)
        self._where[pod.key] = (_ACTIVE, pod, token)
        heapq.heappush(self._active, (-pod.priority, pod.created, pod.seq, token, pod))
        self._wake()

    def _push_backoff(self, pod: QueuedPod, now: float) -> None:
        pod.since = now
        token = next(self._seq)
        self._where[pod.key] = (_BACKOFF, pod, token)
        heapq.heappush(self._backoff, (pod.backoff_until, token, pod))
        self._wake()

    def _release(self, pod: QueuedPod, now: float) -> None:
        """Out of unschedulable: to backoff while its backoff lasts, else active."""
        if pod.backoff_until > now:
            self._push_backoff(pod, now)
        else:
            self._push_active(pod, now)

    def _promote(self, now: float) -> None:
        while self._backoff and self._backoff[0][0] <= now:
            _, token, pod = heapq.heappop(self._backoff)
            if self._live(pod.key, token):
                self._push_active(pod, now)
        limit = now - self.max_unschedulable
        while self._unschedulable:
            key, pod = next(iter(self._unschedulable.items()))
            if pod.since > limit:
                break
            del self._unschedulable[key]
            self._release(pod, now)

    def _next_deadline(self) -> float:
        deadline = math.inf
        while self._backoff:
            due, token, pod = self._backoff[0]
            if self._live(pod.key, token):
                deadline = due
                break
            heapq.heappop(self._backoff)
        if self._unschedulable:
            first = next(iter(self._unschedulable.values()))
            deadline = min(deadline, first.since + self.max_unschedulable)
        return deadline

    def _live(self, key: str, token: int) -> bool:
        entry = self._where.get(key)
        return entry is not None and entry[2] == token

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
