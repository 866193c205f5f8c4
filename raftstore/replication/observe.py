"""What a member tells its operator: leader changes and terms, and slow applies and flushes.

The problem. On a starved machine a member that is descheduled for longer than the
election timeout makes its peers elect a new leader; every election fails or delays the
writes in flight. Without a record of it, "the store was slow" cannot be told apart from
"the store kept changing leaders". etcd answers with a log line per leader change, a
``leader_changes_seen_total`` counter, and warnings when applying an entry or syncing the
WAL takes too long. This module does the same for one member, from the raft thread:

* :class:`LeaderLog` is fed ``(term, leader)`` after every tick. Each new term is logged at
  INFO (an election started), and each leader seen in a new term (an election won) is
  logged at INFO and counted in ``changes`` -- etcd's counter, which counts the first
  leader too. Observing after every tick costs two attribute reads.
* :class:`SlowLog` is told how long each apply or journal flush took and logs a WARNING
  for those over ``threshold`` (100 ms, etcd's apply warning), at most one per kind per
  ``interval`` (1 s) with the number of the others in between, so a starved member does
  not also flood its log. ``counts`` keeps every slow one.

Both are used by one thread (the raft thread); they take no lock. Reading ``changes`` or
``counts`` from another thread sees a value at most one tick old.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["SLOW_THRESHOLD", "LeaderLog", "SlowLog"]

logger = logging.getLogger(__name__)

SLOW_THRESHOLD = 0.1
"""Seconds an apply or a flush may take before it is logged (etcd: 100 ms per apply)."""


class LeaderLog:
    """Logs and counts the terms and leaders one member sees; see the module doc."""

    def __init__(self, member: str, self_id: str) -> None:
        self.member = member
        self.self_id = self_id
        self.changes = 0
        """Leaders seen, one per term that had one (etcd's leader_changes_seen_total)."""
        self._term: int | None = None
        self._leader_term: int | None = None
        self._leader: str | None = None

    def observe(self, term: int, leader: str | None) -> None:
        if term != self._term:
            self._term = term
            if leader is None:
                logger.info(
                    "raft member %s (%s) is at term %d, no leader yet",
                    self.member,
                    self.self_id,
                    term,
                )
        if leader is None or (term == self._leader_term and leader == self._leader):
            return
        previous = self._leader
        self._leader_term, self._leader = term, leader
        self.changes += 1
        logger.info(
            "raft member %s (%s): leader at term %d is %s%s (was %s); leader changes seen: %d",
            self.member,
            self.self_id,
            term,
            leader,
            " (this member)" if leader == self.self_id else "",
            previous or "none",
            self.changes,
        )


class SlowLog:
    """WARNING for applies and flushes slower than ``threshold``, rate-limited per kind."""

    def __init__(
        self,
        member: str,
        *,
        threshold: float = SLOW_THRESHOLD,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = member
        self.threshold = threshold
        self.interval = interval
        self._clock = clock
        self.counts: dict[str, int] = {}
        """Slow operations per kind (``apply``, ``flush``, ...) since the start."""
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def record(self, kind: str, seconds: float, what: str) -> None:
        """``what`` (e.g. ``entry 1234``) of ``kind`` took ``seconds``."""
        if seconds <= self.threshold:
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        self._last[kind] = now
        quiet = self._quiet.pop(kind, 0)
        logger.warning(
            "raft member %s: %s %s took %.0f ms (expected under %.0f ms)%s",
            self.member,
            kind,
            what,
            seconds * 1000,
            self.threshold * 1000,
            f"; {quiet} more since the last warning" if quiet else "",
        )
