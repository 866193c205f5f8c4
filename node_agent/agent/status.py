"""The status manager: pod statuses to the API server, coalesced per pod.

Pod workers compute a pod's full status after every change they see and hand it to
:meth:`StatusManager.set`, which returns at once. Writing each one would let a
flapping container (or a hundred pods starting together) flood the API server, so the
manager keeps, per pod, only the **latest** status not yet written, and one writer task
that sends it:

* **latest wins** -- a status superseded before it was sent is never sent;
* **at most one write in flight per pod**, and at least ``min_interval`` seconds
  (0.1 s by default) between the starts of two writes of one pod: a pod costs at most
  ``1 / min_interval`` writes per second however fast it changes;
* **no redundant writes** -- a status equal to the last one written is dropped;
* **order** -- a pod's statuses are written in the order they were set (a newer one is
  never overtaken by an older one).

How a write is made: the status subresource (``UpdateStatus``) with the pod's uid as the
precondition and no resourceVersion, so that the stale cache of a busy pod never turns a
write into a conflict; the kubelet owns a bound pod's status (foreign conditions are
carried over by the worker from the pod it last saw). A ``Conflict`` means the uid
differs -- the pod was deleted and created again under its name -- and the status is
dropped, as is one for a pod that no longer exists (``NotFound``). An unreachable or
overloaded API server is retried with backoff (0.2 s doubling to 10 s), keeping only the
latest status meanwhile; an ``Invalid`` answer (a bug) is logged and that status dropped.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from actors.client import ApiError, Conflict, Invalid, NotFound
from proto.k8s import core_pb2

__all__ = ["DEFAULT_MIN_INTERVAL", "PodStatusWriter", "StatusManager"]

logger = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL = 0.1
_RETRY_INITIAL = 0.2
_RETRY_MAX = 10.0


class PodStatusWriter(Protocol):
    """The slice of :class:`~actors.client.ApiClient` the manager uses."""

    async def update_status(self, obj: core_pb2.Pod) -> core_pb2.Pod: ...


class _Outcome(enum.Enum):
    WRITTEN = "written"
    RETRY = "retry"
    GONE = "gone"
    DROPPED = "dropped"


@dataclass
class _Entry:
    namespace: str
    name: str
    uid: str
    wanted: core_pb2.PodStatus | None = None
    written: core_pb2.PodStatus | None = None
    last_start: float = -math.inf
    active: bool = False
    gone: bool = False


class StatusManager:
    """Coalescing writer of pod statuses; see the module docstring for the guarantees."""

    def __init__(
        self,
        api: PodStatusWriter,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        on_written: Callable[[str, core_pb2.PodStatus], None] | None = None,
    ) -> None:
        if not min_interval >= 0:
            raise ValueError(f"min_interval must be >= 0 seconds, not {min_interval!r}")
        self.api = api
        self.min_interval = min_interval
        self.on_written = on_written
        self.writes = 0
        """Writes sent (successful or not), for tests and metrics."""
        self._entries: dict[str, _Entry] = {}
        self._nursery: trio.Nursery | None = None
        self._idle = trio.Event()
        self._idle.set()

    def set(self, pod: core_pb2.Pod, status: core_pb2.PodStatus, *, force: bool = False) -> None:
        """Make ``status`` the one to write for ``pod`` (by uid); never blocks.

        ``force`` writes it even when it equals the last one written (the stored status
        was changed by someone else).
        """
        uid = pod.metadata.uid
        entry = self._entries.get(uid)
        if entry is None:
            entry = _Entry(pod.metadata.namespace, pod.metadata.name, uid)
            self._entries[uid] = entry
        if entry.gone:
            return
        if force:
            entry.written = None
        elif not entry.active and entry.written is not None and status == entry.written:
            return
        entry.wanted = status
        self._ensure_writer(entry)

    def last_written(self, uid: str) -> core_pb2.PodStatus | None:
        entry = self._entries.get(uid)
        return None if entry is None else entry.written

    def forget(self, uid: str) -> None:
        """Drop what is known about ``uid`` (its pod is gone); a pending write is dropped."""
        entry = self._entries.pop(uid, None)
        if entry is not None:
            entry.gone = True
            entry.wanted = None

    @property
    def pending(self) -> int:
        return sum(1 for e in self._entries.values() if e.active)

    async def wait_idle(self) -> None:
        """Return once no write is pending or in flight."""
        while self.pending:
            self._idle = trio.Event()
            await self._idle.wait()

    def _ensure_writer(self, entry: _Entry) -> None:
        if entry.active or self._nursery is None:
            return
        entry.active = True
        self._nursery.start_soon(self._writer, entry)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write until cancelled (statuses set before it runs are written then)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for entry in list(self._entries.values()):
                    if entry.wanted is not None:
                        self._ensure_writer(entry)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _writer(self, entry: _Entry) -> None:
        retry = _RETRY_INITIAL
        try:
            while entry.wanted is not None and not entry.gone:
                delay = entry.last_start + self.min_interval - trio.current_time()
                if delay > 0:
                    await trio.sleep(delay)
                status = entry.wanted
                if status is None:
                    break
                entry.wanted = None
                if entry.written is not None and status == entry.written:
                    continue
                entry.last_start = trio.current_time()
                outcome = await self._write(entry, status)
                if outcome is _Outcome.RETRY:
                    if entry.wanted is None:
                        entry.wanted = status
                    await trio.sleep(retry)
                    retry = min(retry * 2, _RETRY_MAX)
                    continue
                retry = _RETRY_INITIAL
                if outcome is _Outcome.WRITTEN:
                    entry.written = status
                    if self.on_written is not None:
                        self.on_written(entry.uid, status)
                elif outcome is _Outcome.GONE:
                    self.forget(entry.uid)
        finally:
            entry.active = False
            if not self.pending:
                self._idle.set()

    async def _write(self, entry: _Entry, status: core_pb2.PodStatus) -> _Outcome:
        pod = core_pb2.Pod(api_version="v1", kind="Pod")
        pod.metadata.namespace = entry.namespace
        pod.metadata.name = entry.name
        pod.metadata.uid = entry.uid
        pod.status.CopyFrom(status)
        self.writes += 1
        try:
            await self.api.update_status(pod)
        except NotFound:
            logger.debug("pod %s/%s is gone; status dropped", entry.namespace, entry.name)
            return _Outcome.GONE
        except Conflict as exc:
            logger.info(
                "pod %s/%s (uid %s) was replaced; status dropped: %s",
                entry.namespace,
                entry.name,
                entry.uid,
                exc,
            )
            return _Outcome.GONE
        except Invalid as exc:
            logger.error(
                "the API server refused the status of pod %s/%s: %s",
                entry.namespace,
                entry.name,
                exc,
            )
            return _Outcome.DROPPED
        except ApiError as exc:
            logger.warning(
                "could not write the status of pod %s/%s (will retry): %s",
                entry.namespace,
                entry.name,
                exc,
            )
            return _Outcome.RETRY
        return _Outcome.WRITTEN
