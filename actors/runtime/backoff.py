"""Exponential backoff between restarts of a crashed child.

A child that crashes is restarted after a delay that grows with each consecutive restart,
so that a child which cannot work (a dependency is down, its configuration is bad) costs
little while it waits, and one that crashed once by bad luck comes back quickly.

The delay before restart number ``n`` (counting from 0 since the last reset) is::

    base(n)  = min(max_delay, initial * factor ** n)
    delay(n) = base(n) * (1 - jitter * u),   u uniform in [0, 1)

With the defaults (0.1 s, x2, cap 10 s, no jitter) a child crashing at once every time is
restarted 0.1, 0.2, 0.4, 0.8, ... seconds after each crash: at t = 0.1, 0.3, 0.7, 1.5, ...
if the first crash was at t = 0.

Trade-offs
    * Jitter only ever *shortens* a delay (the "equal jitter" family), so ``max_delay``
      stays a hard cap and a jittered schedule is never slower than the plain one. It
      spreads out siblings that crashed together (a shared dependency went away) so that
      they do not all retry in the same instant.
    * Jitter is drawn from a ``random.Random`` handed in by the caller; the supervisor
      seeds one per child from ``(seed, child name)``, so a schedule is reproducible under
      a seed no matter how trio happens to order tasks.
    * Resetting is the caller's decision (the supervisor resets after a child has run
      healthily for :attr:`BackoffPolicy.reset_after` seconds); this module keeps no clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["DEFAULT_BACKOFF", "Backoff", "BackoffPolicy"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BackoffPolicy:
    """How restart delays grow, are capped, jittered and reset. Times are in seconds."""

    initial: float = 0.1
    """Delay before the first restart after a reset."""
    factor: float = 2.0
    """Each further consecutive restart waits this many times longer (at least 1)."""
    max_delay: float = 10.0
    """No delay exceeds this, jitter included."""
    jitter: float = 0.0
    """Fraction in [0, 1] by which a delay may be randomly shortened; 0 disables jitter."""
    reset_after: float = 30.0
    """A child that ran at least this long before terminating starts again from ``initial``."""

    def __post_init__(self) -> None:
        for field_name in ("initial", "factor", "max_delay", "jitter", "reset_after"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{field_name} must be a number, not {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"{field_name} must be finite, not {value!r}")
        if self.initial < 0:
            raise ValueError(f"initial must be >= 0, not {self.initial!r}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, not {self.factor!r}")
        if self.max_delay < self.initial:
            raise ValueError(
                f"max_delay must be >= initial ({self.initial!r}), not {self.max_delay!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter!r}")
        if self.reset_after < 0:
            raise ValueError(f"reset_after must be >= 0, not {self.reset_after!r}")

    def base_delay(self, attempt: int) -> float:
        """The un-jittered delay before restart number ``attempt`` (0-based)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, not {attempt!r}")
        if self.initial == 0:
            return 0.0
        try:
            delay = self.initial * self.factor**attempt
        except OverflowError:  # factor ** attempt is beyond float range: long past the cap
            return self.max_delay
        return min(delay, self.max_delay)


DEFAULT_BACKOFF = BackoffPolicy()
"""0.1 s, doubling, capped at 10 s, no jitter, reset after 30 s of healthy running."""


class Backoff:
    """The running state of one backoff schedule: how many restarts since the last reset.

    Not shared between tasks; each supervised child owns one.
    """

    def __init__(self, policy: BackoffPolicy, *, rng: random.Random | None = None) -> None:
        if policy.jitter and rng is None:
            raise ValueError("a jittered policy needs an rng (pass random.Random(seed))")
        self._policy = policy
        self._rng = rng
        self._attempt = 0

    @property
    def policy(self) -> BackoffPolicy:
        return self._policy

    @property
    def attempt(self) -> int:
        """How many delays have been handed out since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        """The delay to wait before the next restart; advances the schedule."""
        delay = self._policy.base_delay(self._attempt)
        self._attempt += 1
        if self._policy.jitter and self._rng is not None:
            delay *= 1 - self._policy.jitter * self._rng.random()
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` (the child proved healthy)."""
        self._attempt = 0
