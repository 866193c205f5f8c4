"""One-for-one supervision: restart crashed children with backoff, escalate when hopeless.

A supervisor owns a trio nursery and runs each child in it, inside a loop that restarts
the child when it terminates, as its :class:`~actors.runtime.spec.RestartPolicy` says,
after an exponential backoff delay (:mod:`actors.runtime.backoff`). Children are
independent (one-for-one): one child's crash restarts only that child.

Use it as ``async with open_supervisor(...) as sup:`` (the block, like a nursery's, waits
at its end until every child has terminated for good), or as a service with
``sup = await nursery.start(run_supervisor, ...)`` (runs until cancelled). Children are
given up front (``children=``) or added at any time with :meth:`Supervisor.start_child`.

Guarantees
    * Every child runs in the supervisor's nursery; nothing outlives the supervisor. When
      the supervisor is cancelled (by an enclosing cancel scope or :meth:`Supervisor.cancel`)
      every child is cancelled and has finished (its ``finally`` blocks have run) before
      the ``async with`` block or ``run_supervisor`` exits.
    * A child that raises an :class:`Exception` (an ``ExceptionGroup`` included) has
      crashed: the crash is logged with its traceback, and the child is restarted or not
      by its policy. ``BaseException``\\s that are not ``Exception``\\s (``trio.Cancelled``,
      ``KeyboardInterrupt``) are never treated as crashes; they propagate.
    * Restarting: the delay before each restart grows from ``backoff.initial`` by
      ``backoff.factor`` up to ``backoff.max_delay``; it resets to ``initial`` when the run
      that just ended lasted at least ``backoff.reset_after`` seconds. Each restart calls
      the child's ``target`` afresh.
    * Escalation: when restarting a child would make more than ``intensity.max_restarts``
      terminations of that child within ``intensity.window`` seconds, the supervisor
      cancels all its children and raises :class:`~actors.runtime.errors.TooManyRestarts`
      (carrying the child's name and last error, which is also its ``__cause__``). A
      supervised supervisor that escalates has therefore crashed, as far as its own
      supervisor is concerned.
    * Logging: logger ``actors.runtime.supervisor``; one record per event, with a
      one-line ``key=value`` message and the ``supervisor`` and ``child`` names as record
      attributes (``extra``). A crash is logged at ERROR with the exception attached
      (``exc_info``) and says what happens next (``action=restart delay=...``,
      ``action=escalate`` or ``action=stop``).
    * Times come from ``trio.current_time()``, so trio's ``MockClock`` drives them in tests.

Trade-offs and rejected options
    * Only one-for-one. one-for-all / rest-for-one couple children's lifetimes; our
      components are level-triggered and rebuild their state from the store, so a
      sibling's crash never invalidates another's state.
    * Intensity is counted per child (see :class:`~actors.runtime.spec.RestartIntensity`).
    * A child's mailbox is not the supervisor's business: it is created by whoever wires
      the child (see :func:`~actors.runtime.actor.actor_child`) and survives restarts.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .backoff import DEFAULT_BACKOFF, Backoff, BackoffPolicy
from .errors import DuplicateChild, SupervisorClosed, TooManyRestarts, UnknownChild
from .spec import DEFAULT_INTENSITY, ChildSpec, RestartIntensity, RestartPolicy

__all__ = [
    "ChildState",
    "ChildStatus",
    "Supervisor",
    "open_supervisor",
    "run_supervisor",
]

logger = logging.getLogger(__name__)


class ChildState(enum.Enum):
    """Where a live child is in its life cycle."""

    RUNNING = "running"
    """An incarnation of the child is running (or being cancelled)."""
    BACKING_OFF = "backing_off"
    """The child terminated and waits for its backoff delay before being restarted."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChildStatus:
    """A snapshot of one live child, as reported by :attr:`Supervisor.children`."""

    name: str
    state: ChildState
    restarts: int
    """How many times the child has been restarted since it was first started."""
    last_error: BaseException | None
    """The exception that ended the child's most recent crash, if it ever crashed."""


class _Child:
    """The supervisor's mutable record of one live child; touched only from trio tasks."""

    def __init__(self, spec: ChildSpec, *, backoff: Backoff) -> None:
        self.spec = spec
        self.backoff = backoff
        self.scope = trio.CancelScope()  # cancelled by terminate_child
        self.stopped = trio.Event()  # set once the child's loop has fully exited
        self.state = ChildState.RUNNING
        self.restarts = 0
        self.last_error: BaseException | None = None
        # End times of recent terminations that wanted a restart, oldest first, all within
        # the intensity window of the newest.
        self.terminations: deque[float] = deque()

    def status(self) -> ChildStatus:
        return ChildStatus(
            name=self.spec.name,
            state=self.state,
            restarts=self.restarts,
            last_error=self.last_error,
        )


class Supervisor:
    """A running one-for-one supervisor; get one from :func:`open_supervisor`.

    Its methods may be called from any task in the same trio run, including its children.
    """

    def __init__(
        self,
        *,
        nursery: trio.Nursery,
        name: str,
        backoff: BackoffPolicy,
        intensity: RestartIntensity,
        seed: int | None,
    ) -> None:
        # Private: the supervisor must own its nursery so that escalation can be raised
        # out of it (open_supervisor) rather than into someone else's.
        self._nursery = nursery
        self._name = name
        self._backoff = backoff
        self._intensity = intensity
        self._seed = seed
        self._children: dict[str, _Child] = {}
        self._closed = False
        self._escalation: TooManyRestarts | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def children(self) -> Mapping[str, ChildStatus]:
        """A snapshot of the live children (terminated-for-good ones are gone), by name."""
        return {name: child.status() for name, child in self._children.items()}

    def start_child(self, spec: ChildSpec) -> None:
        """Start supervising ``spec``: its first incarnation starts at the next checkpoint.

        Raises :class:`DuplicateChild` if a live child has the same name and
        :class:`SupervisorClosed` once the supervisor is cancelled, escalating or stopped.
        """
        if self._closed or self._nursery.cancel_scope.cancel_called:
            raise SupervisorClosed(supervisor=self._name)
        if spec.name in self._children:
            raise DuplicateChild(supervisor=self._name, child=spec.name)
        child = _Child(spec, backoff=Backoff(self._backoff, rng=self._child_rng(spec.name)))
        self._children[spec.name] = child
        self._nursery.start_soon(self._supervise, child, name=f"{self._name}/{spec.name}")

    async def terminate_child(self, name: str) -> None:
        """Cancel the child ``name`` for good and wait until it has finished.

        The child is not restarted, whatever its policy. Raises :class:`UnknownChild` if no
        live child has that name.
        """
        child = self._children.get(name)
        if child is None:
            raise UnknownChild(supervisor=self._name, child=name)
        child.scope.cancel()
        await child.stopped.wait()

    def cancel(self) -> None:
        """Shut down: cancel every child and the supervisor itself (not an error)."""
        self._nursery.cancel_scope.cancel()

    def _child_rng(self, child: str) -> random.Random:
        if self._seed is None:
            return random.Random()
        # Seeded per child from (seed, name): jitter does not depend on task ordering.
        return random.Random(f"{self._seed}\x00{child}")

    async def _supervise(self, child: _Child) -> None:
        spec = child.spec
        extra = {"supervisor": self._name, "child": spec.name}
        try:
            with child.scope:
                while True:
                    child.state = ChildState.RUNNING
                    started_at = trio.current_time()
                    logger.debug(
                        "child started supervisor=%s child=%s restarts=%d",
                        self._name,
                        spec.name,
                        child.restarts,
                        extra=extra,
                    )
                    error: Exception | None = None
                    try:
                        await spec.target()
                    except Exception as exc:
                        error = exc
                    ended_at = trio.current_time()
                    ran_for = ended_at - started_at
                    if error is not None:
                        child.last_error = error

                    # While shutting down, a child that raised as it was being cancelled
                    # (say, from a finally block) is logged but neither restarted nor
                    # counted toward escalation.
                    crashed = error is not None
                    if _being_cancelled() or not _wants_restart(spec.restart, crashed=crashed):
                        self._log_termination(child, error, ran_for, action="stop")
                        return

                    if ran_for >= self._backoff.reset_after:
                        child.backoff.reset()
                    window = self._intensity.window
                    child.terminations.append(ended_at)
                    while child.terminations[0] <= ended_at - window:
                        child.terminations.popleft()
                    if len(child.terminations) > self._intensity.max_restarts:
                        self._log_termination(child, error, ran_for, action="escalate")
                        self._escalate(
                            TooManyRestarts(
                                supervisor=self._name,
                                child=spec.name,
                                restarts=len(child.terminations),
                                window=window,
                                last_error=error,
                            )
                        )
                        return

                    delay = child.backoff.next_delay()
                    self._log_termination(child, error, ran_for, action="restart", delay=delay)
                    child.state = ChildState.BACKING_OFF
                    await trio.sleep(delay)
                    child.restarts += 1
        finally:
            if self._children.get(spec.name) is child:
                del self._children[spec.name]
            child.stopped.set()

    def _log_termination(
        self,
        child: _Child,
        error: Exception | None,
        ran_for: float,
        *,
        action: str,
        delay: float | None = None,
    ) -> None:
        extra = {"supervisor": self._name, "child": child.spec.name}
        outcome = f"action={action}" if delay is None else f"action={action} delay={delay:.3f}s"
        if error is None:
            level = logging.WARNING if action == "escalate" else logging.INFO
            logger.log(
                level,
                "child exited supervisor=%s child=%s ran_for=%.3fs %s",
                self._name,
                child.spec.name,
                ran_for,
                outcome,
                extra=extra,
            )
        else:
            logger.error(
                "child crashed supervisor=%s child=%s ran_for=%.3fs error=%r %s",
                self._name,
                child.spec.name,
                ran_for,
                error,
                outcome,
                exc_info=error,
                extra=extra,
            )

    def _escalate(self, error: TooManyRestarts) -> None:
        if self._escalation is None:
            self._escalation = error
        self._nursery.cancel_scope.cancel()


def _being_cancelled() -> bool:
    return trio.current_effective_deadline() == -math.inf


def _wants_restart(policy: RestartPolicy, *, crashed: bool) -> bool:
    return _RESTART_TABLE[policy, crashed]


# (policy, crashed) -> restart?  See RestartPolicy's docstring.
_RESTART_TABLE: Mapping[tuple[RestartPolicy, bool], bool] = {
    (RestartPolicy.PERMANENT, False): True,
    (RestartPolicy.PERMANENT, True): True,
    (RestartPolicy.TRANSIENT, False): False,
    (RestartPolicy.TRANSIENT, True): True,
    (RestartPolicy.TEMPORARY, False): False,
    (RestartPolicy.TEMPORARY, True): False,
}


@asynccontextmanager
async def open_supervisor(
    *,
    name: str = "supervisor",
    children: Iterable[ChildSpec] = (),
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    intensity: RestartIntensity = DEFAULT_INTENSITY,
    seed: int | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a one-for-one supervisor for the duration of the ``async with`` block.

    ``children`` are started (in order) before the block is entered. Leaving the block
    normally waits, like a nursery, until every child has terminated for good; permanent
    children never do, so the supervisor then runs until it is cancelled (an enclosing
    cancel scope, or :meth:`Supervisor.cancel`, which ends the block without error).

    Raises :class:`TooManyRestarts` out of the block when a child exceeds ``intensity``,
    after cancelling the block's body and every child. ``seed`` makes backoff jitter
    reproducible. An exception raised by the body cancels every child and propagates
    (wrapped in an ``ExceptionGroup``, as trio nurseries do).
    """
    supervisor: Supervisor | None = None
    try:
        async with trio.open_nursery() as nursery:
            supervisor = Supervisor(
                nursery=nursery, name=name, backoff=backoff, intensity=intensity, seed=seed
            )
            for spec in children:
                supervisor.start_child(spec)
            yield supervisor
    finally:
        if supervisor is not None:
            supervisor._closed = True
    if supervisor is not None and supervisor._escalation is not None:
        escalation = supervisor._escalation
        raise escalation from escalation.last_error


async def run_supervisor(
    *,
    name: str = "supervisor",
    children: Iterable[ChildSpec] = (),
    backoff: BackoffPolicy = DEFAULT_BACKOFF,
    intensity: RestartIntensity = DEFAULT_INTENSITY,
    seed: int | None = None,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a supervisor as a service: ``sup = await nursery.start(run_supervisor, ...)``.

    Reports the :class:`Supervisor` through ``task_status.started()`` once its nursery is
    open and ``children`` have been started, so :meth:`Supervisor.start_child` works at
    once. Runs until cancelled; returns when :meth:`Supervisor.cancel` is called; raises
    :class:`TooManyRestarts` on escalation. With the defaults it also fits a
    :class:`ChildSpec` target, for a tree of supervisors.
    """
    async with open_supervisor(
        name=name, children=children, backoff=backoff, intensity=intensity, seed=seed
    ) as supervisor:
        task_status.started(supervisor)
        await trio.sleep_forever()
