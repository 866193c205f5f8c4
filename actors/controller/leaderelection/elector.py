"""``LeaderElector``: at most one candidate acts at a time, by holding a Lease.

The problem
    The scheduler and the controller-manager run several replicas for availability, but
    two schedulers binding the same pods, or two ReplicaSet controllers creating the same
    replicas, would fight. So replicas elect a leader, and only the leader acts. The
    election must survive crashes, network partitions and processes that are frozen
    (SIGSTOP, a long GC pause, a suspended VM) and then wake up believing they still lead.

The algorithm (client-go's ``leaderelection``, on trio)
    Candidates contend for one Lease object (``coordination.k8s.io/v1``). Each attempt --
    to acquire or to renew -- reads the Lease and then writes it with the
    ``resourceVersion`` it read, so that of two candidates racing, exactly one write
    succeeds and the other gets :class:`~actors.client.errors.Conflict`. A leader renews
    without the read when it can (client-go's fast path): it writes over the version it
    wrote last, and reads only when that write conflicts -- one round trip per renewal
    on a busy API server instead of two.

    * **Acquire.** Create the Lease if it is missing. Otherwise take it when it is unheld
      (``holderIdentity`` empty: released) or expired. "Expired" is judged by this
      candidate's own monotonic clock: the Lease is expired when it has not *changed*
      (a new ``resourceVersion``) for ``leaseDurationSeconds`` since this candidate first
      saw its current version. Wall-clock times in the Lease are written for people and
      never compared across machines, so clock skew cannot make a live leader look dead.
      Taking the Lease from another holder (or from nobody) adds one to
      ``leaseTransitions`` and sets ``acquireTime``.
    * **Lead.** ``leading()`` runs in a cancel scope whose deadline is
      ``renew_deadline`` after the *start* of the last successful attempt. Every
      ``retry_period`` the leader renews (sets ``renewTime``); each success moves the
      deadline. When the deadline passes, trio cancels ``leading()`` by itself -- no task
      has to wake up and notice -- and the elector goes back to campaigning. When a renew
      finds the Lease held by someone else, or deleted, leading stops at once.
    * **Release.** On a clean shutdown (``release_on_cancel``), and when ``leading()``
      returns or raises, the leader writes ``holderIdentity: ""`` and
      ``leaseDurationSeconds: 1`` (as client-go does), after ``leading()`` has stopped,
      so a standby takes over at its next attempt instead of waiting out the lease.

Why the leader has stopped before anyone else can start
    Let S be the start of the leader's last successful attempt; its write W happened after
    S. A standby that read W waits at least ``lease_duration`` after that read, so it
    cannot take over before S + ``lease_duration``, while the leader's scope is cancelled
    at S + ``renew_deadline``, which is earlier. The margin (``lease_duration -
    renew_deadline``) is the time ``leading()`` has to unwind after cancellation; it
    must not shield long work from cancellation. The argument needs the two monotonic
    clocks to run at the same *rate*, not to agree: that is the only assumption.

    A frozen leader is the same case: while it is stopped its monotonic clock keeps
    running, so when it resumes its scope's deadline is already past. Because the
    deadline belongs to the scope itself (no watchdog task has to be scheduled to notice),
    trio expires it before it starts the next batch of tasks, and the next checkpoint in
    ``leading()`` raises ``Cancelled``. Only a step already under way when the process
    froze finishes (a fencing token in the actions themselves is the only cure for that,
    as in Kubernetes).

Errors
    :class:`~actors.client.errors.ServiceUnavailable` (including ``Unreachable``),
    :class:`~actors.client.errors.Timeout` and ``InternalError`` from the API server are
    retried every ``retry_period`` and never end :meth:`LeaderElector.run`; one warning is
    logged when the failure changes, one info line when the API answers again. Each
    attempt is also bounded (by ``renew_deadline``, or by the leading deadline while
    leading), so a hung call cannot hold the elector. Other API errors (``Forbidden``,
    ``Invalid``: something is misconfigured) end ``run()`` with that error, for the
    caller's supervisor to report and restart.

Timings are read from ``trio.current_time()``, so tests run on trio's fake clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import math
from collections.abc import Awaitable, Callable

import trio

from actors.client import ApiClient, errors

from .config import LeaderElectionConfig
from .lock import ApiLeaseLock, LeaseLock, LeaseRecord

__all__ = ["RELEASE_TIMEOUT", "LeaderElector", "run_leader_elected"]

logger = logging.getLogger(__name__)

RELEASE_TIMEOUT = 2.0
"""At most this long (and at most ``renew_deadline``) is spent releasing on shutdown."""

RETRIABLE: tuple[type[errors.ApiError], ...] = (
    errors.ServiceUnavailable,
    errors.Timeout,
    errors.InternalError,
)
"""API errors that say "not now" rather than "never": retried every ``retry_period``."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Outcome(enum.Enum):
    HELD = "held"
    """This candidate holds the Lease now (acquired or renewed)."""
    NOT_HELD = "not held"
    """Someone else holds it; while renewing: the Lease is no longer ours."""
    FAILED = "failed"
    """No decision: a lost race, an error, a timeout. Try again after ``retry_period``."""


class LeaderElector:
    """One candidate's campaign for the Lease behind ``lock``; see the module doc.

    State (read from inside the trio run):

    * :attr:`is_leader` -- True while this candidate leads: from acquiring the Lease
      until its leading deadline passes or ``leading()`` stops.
    * :attr:`leader` -- the holder identity last observed (``""``: none seen, or released).
    * :attr:`record` -- the Lease as last observed.
    """

    def __init__(
        self,
        config: LeaderElectionConfig,
        lock: LeaseLock,
        *,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.config = config
        self._lock = lock
        self._wall_clock = wall_clock
        self._running = False
        self._on_new_leader: Callable[[str], None] | None = None
        # The Lease as last observed and when (trio time) its current version was first
        # seen: the start of the expiry countdown.
        self._observed: LeaseRecord | None = None
        self._observed_at = -math.inf
        self._reported_leader = ""
        # Leading: flag, and the trio time leading must stop by unless renewed.
        self._leading = False
        self._deadline = -math.inf
        self._leading_finished = False
        self._stop_reason = ""
        self._lost_reason = ""
        self._fatal: Exception | None = None
        self._problem: str | None = None

    def __repr__(self) -> str:
        return f"LeaderElector({self._lease_name} identity={self.identity!r})"

    @property
    def _lease_name(self) -> str:
        return f"{self.config.lock_namespace}/{self.config.lock_name}"

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def is_leader(self) -> bool:
        """True while this candidate leads and its renew deadline has not passed."""
        return self._leading and trio.current_time() < self._deadline

    @property
    def leader(self) -> str:
        """The holder identity as last observed; ``""`` when none was seen or it was released."""
        return self._reported_leader

    @property
    def record(self) -> LeaseRecord | None:
        """The Lease as last observed (``None`` before the first successful read)."""
        return self._observed

    # ------------------------------------------------------------------ running

    async def run(
        self,
        leading: Callable[[], Awaitable[None]],
        *,
        on_new_leader: Callable[[str], None] | None = None,
        task_status: trio.TaskStatus[LeaderElector] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Campaign forever; run ``leading()`` whenever this candidate holds the Lease.

        ``task_status.started(self)`` is called once the first attempt to acquire has
        been made (successful or not), so :attr:`is_leader` and :attr:`leader` reflect
        it. When leadership is lost, ``leading()`` is cancelled and the campaign goes on.
        When ``leading()`` returns or raises, the Lease is released and ``run`` returns
        or raises the same exception. ``on_new_leader(identity)`` is called, from this
        task, whenever the observed holder changes (``""``: the Lease was released); an
        exception from it ends ``run``.
        """
        if self._running:
            raise RuntimeError(f"{self!r} is already running")
        self._running = True
        self._on_new_leader = on_new_leader
        self._leading_finished = False
        try:
            while True:
                await self._campaign(task_status)
                task_status = trio.TASK_STATUS_IGNORED
                if await self._lead(leading):
                    return
        finally:
            self._leading = False
            if self._holds_lease() and (self._leading_finished or self.config.release_on_cancel):
                timeout = min(RELEASE_TIMEOUT, self.config.renew_deadline)
                with trio.move_on_after(timeout, shield=True) as scope:
                    await self._release()
                if scope.cancelled_caught:
                    logger.warning("%r: could not release the lease within %gs", self, timeout)
            self._running = False
            self._on_new_leader = None

    async def _campaign(self, task_status: trio.TaskStatus[LeaderElector]) -> None:
        """Return once this candidate holds the Lease; ``started`` after the first attempt."""
        config = self.config
        while True:
            start = trio.current_time()
            outcome = await self._attempt(renewing=False, deadline=start + config.renew_deadline)
            if outcome is _Outcome.HELD:
                self._leading = True
                self._deadline = start + config.renew_deadline
                logger.info("%r: acquired the lease, leading", self)
            task_status.started(self)
            task_status = trio.TASK_STATUS_IGNORED
            if outcome is _Outcome.HELD:
                return
            await trio.sleep(config.retry_period)

    async def _lead(self, leading: Callable[[], Awaitable[None]]) -> bool:
        """Run ``leading()`` while renewing; True when it returned, False when leadership
        was lost. Raises what ``leading()`` raised."""
        if trio.current_time() >= self._deadline:
            # The acquiring call itself took the whole renew deadline: do not start.
            self._leading = False
            return False
        scope = trio.CancelScope(deadline=self._deadline)
        failure: Exception | None = None
        returned = False
        self._fatal = None
        self._stop_reason = (
            f"no successful renewal within the renew deadline ({self.config.renew_deadline:g}s)"
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_renewing, scope)
                with scope:
                    try:
                        await leading()
                    except Exception as exc:
                        failure = exc
                    else:
                        returned = True
                nursery.cancel_scope.cancel()
        finally:
            self._leading = False
        if failure is not None:
            self._leading_finished = True
            logger.info("%r: leading() raised %r, releasing the lease", self, failure)
            raise failure
        if returned:
            self._leading_finished = True
            logger.info("%r: leading() returned, releasing the lease", self)
            return True
        if self._fatal is not None:
            raise self._fatal
        logger.warning("%r: stopped leading: %s", self, self._stop_reason)
        return False

    async def _keep_renewing(self, scope: trio.CancelScope) -> None:
        """Renew every ``retry_period``; move ``scope``'s deadline on each success."""
        config = self.config
        try:
            while True:
                await trio.sleep(config.retry_period)
                start = trio.current_time()
                if start >= self._deadline:
                    return  # the deadline has cancelled ``scope`` already
                outcome = await self._attempt(renewing=True, deadline=self._deadline)
                if outcome is _Outcome.HELD:
                    self._deadline = start + config.renew_deadline
                    scope.deadline = self._deadline
                elif outcome is _Outcome.NOT_HELD:
                    self._stop_reason = self._lost_reason
                    scope.cancel()
                    return
        except Exception as exc:
            self._fatal = exc
            self._stop_reason = f"renewing failed: {exc!r}"
            scope.cancel()

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, *, renewing: bool, deadline: float) -> _Outcome:
        """One bounded try to acquire or renew; retriable errors become FAILED."""
        with trio.move_on_at(deadline):
            try:
                outcome = await self._try_acquire_or_renew(renewing=renewing)
            except RETRIABLE as exc:
                self._report_problem(f"{type(exc).__name__}: {exc}")
                return _Outcome.FAILED
            self._report_recovery()
            return outcome
        self._report_problem("the API server did not answer in time")
        return _Outcome.FAILED

    async def _try_acquire_or_renew(self, *, renewing: bool) -> _Outcome:
        if renewing:
            renewed = await self._renew_from_observed()
            if renewed is not None:
                return renewed
        config = self.config
        record = await self._lock.get()
        if record is None:
            if renewing:
                self._lost_reason = "the lease was deleted"
                return _Outcome.NOT_HELD
            wall = self._wall_clock()
            new = LeaseRecord(
                holder_identity=config.identity,
                lease_duration_seconds=config.lease_duration_seconds,
                acquire_time=wall,
                renew_time=wall,
                lease_transitions=0,
            )
            try:
                stored = await self._lock.create(new)
            except errors.AlreadyExists:
                return _Outcome.FAILED
            self._observe(stored)
            return _Outcome.HELD

        self._observe(record)
        holder = record.holder_identity
        ours = holder == config.identity
        if renewing and not ours:
            self._lost_reason = (
                f"the lease is now held by {holder!r}" if holder else "the lease was released"
            )
            return _Outcome.NOT_HELD
        if holder and not ours and not self._expired():
            return _Outcome.NOT_HELD
        wall = self._wall_clock()
        new = dataclasses.replace(
            record,
            holder_identity=config.identity,
            lease_duration_seconds=config.lease_duration_seconds,
            acquire_time=(record.acquire_time or wall) if ours else wall,
            renew_time=wall,
            lease_transitions=record.lease_transitions + (0 if ours else 1),
        )
        try:
            stored = await self._lock.update(new, record.resource_version)
        except (errors.Conflict, errors.NotFound):
            return _Outcome.FAILED
        self._observe(stored)
        return _Outcome.HELD

    async def _renew_from_observed(self) -> _Outcome | None:
        """The leader's fast path: write the renewal over the version it wrote last.

        The write is conditional on that ``resourceVersion``, so it succeeds only if
        nobody changed the Lease since -- exactly what a read would have shown before the
        same write. ``None`` (a conflict, or nothing observed) means: take the slow path,
        read and decide. One round trip per renewal instead of two, as client-go does.
        """
        record = self._observed
        if record is None or record.holder_identity != self.config.identity:
            return None
        new = dataclasses.replace(
            record,
            lease_duration_seconds=self.config.lease_duration_seconds,
            renew_time=self._wall_clock(),
        )
        try:
            stored = await self._lock.update(new, record.resource_version)
        except (errors.Conflict, errors.NotFound):
            return None
        self._observe(stored)
        return _Outcome.HELD

    def _expired(self) -> bool:
        """Has the observed version gone unchanged for its lease duration (local clock)?"""
        record = self._observed
        if record is None:
            return True
        seconds = record.lease_duration_seconds
        duration = float(seconds) if seconds and seconds > 0 else self.config.lease_duration
        return trio.current_time() >= self._observed_at + duration

    def _observe(self, record: LeaseRecord) -> None:
        """Remember ``record``; a new version restarts the expiry countdown."""
        if self._observed is None or record.resource_version != self._observed.resource_version:
            self._observed_at = trio.current_time()
        self._observed = record
        holder = record.holder_identity
        if holder != self._reported_leader:
            self._reported_leader = holder
            if holder:
                logger.info("%r: new leader %r", self, holder)
            else:
                logger.info("%r: the lease was released", self)
            if self._on_new_leader is not None:
                self._on_new_leader(holder)

    def _holds_lease(self) -> bool:
        return self._observed is not None and self._observed.holder_identity == self.identity

    async def _release(self) -> None:
        """Write ``holderIdentity: ""`` if the Lease is still ours; never raises ApiError."""
        for _ in range(3):  # a renew that was in flight may land first: read again
            try:
                record = await self._lock.get()
                if record is None or record.holder_identity != self.identity:
                    return
                wall = self._wall_clock()
                released = dataclasses.replace(
                    record,
                    holder_identity="",
                    lease_duration_seconds=1,
                    acquire_time=wall,
                    renew_time=wall,
                )
                stored = await self._lock.update(released, record.resource_version)
            except (errors.Conflict, errors.NotFound):
                continue
            except errors.ApiError as exc:
                logger.warning("%r: could not release the lease: %s", self, exc)
                return
            self._observe(stored)
            return

    # ------------------------------------------------------------------ reporting

    def _report_problem(self, text: str) -> None:
        if text != self._problem:
            logger.warning("%r: cannot reach the lease, will retry: %s", self, text)
        self._problem = text

    def _report_recovery(self) -> None:
        if self._problem is not None:
            logger.info("%r: the lease is reachable again", self)
        self._problem = None


async def run_leader_elected(
    api: ApiClient,
    config: LeaderElectionConfig,
    leading: Callable[[], Awaitable[None]],
    *,
    on_new_leader: Callable[[str], None] | None = None,
    task_status: trio.TaskStatus[LeaderElector] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Campaign for the Lease ``config.lock_namespace/lock_name`` through ``api`` and run
    ``leading()`` while holding it; :meth:`LeaderElector.run` says exactly how.

    ``await nursery.start(run_leader_elected, api, config, leading)`` returns the
    :class:`LeaderElector` after its first attempt to acquire.
    """
    lock = ApiLeaseLock(api, namespace=config.lock_namespace, name=config.lock_name)
    elector = LeaderElector(config, lock)
    await elector.run(leading, on_new_leader=on_new_leader, task_status=task_status)
