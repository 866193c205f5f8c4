"""Restart backoff of one container: Kubernetes' CrashLoopBackOff, step by step.

The kubelet restarts a container that exited (restartPolicy Always, or OnFailure after a
failure) -- but not at once every time, or a container that crashes on start would spin.
Its rule (``kuberuntime_manager.doBackOff`` over ``flowcontrol.Backoff``) is reproduced
here exactly, because users read its effects in ``kubectl get pods``:

* the **first** restart after a clean slate happens at once, and arms a window of
  ``initial`` (10 s);
* a container that exits again while the window, counted from its *finish time*, is
  still open waits in ``CrashLoopBackOff`` until it closes; each restart doubles the
  window, up to ``max`` (5 min): restarts come 0, 10, 20, 40, ... 300, 300 s apart;
* a container that ran longer than ``reset_after`` (2 x ``max`` = 10 min, Kubernetes'
  ``hasExpired``) since its last restart starts from a clean slate again.

The image pull backoff (``ImagePullBackOff``) is the same schedule over pull attempts.

Local clusters want faster feedback than 5 minutes: :meth:`BackoffConfig.capped` keeps
the shape but caps both ``initial`` and ``max`` (``--max-backoff``); ``reset_after``
follows ``max`` as in Kubernetes.

Times are plain floats on one monotonic clock (the agent passes ``trio.current_time()``),
so tests drive it with trio's fake clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_BACKOFF", "BackoffConfig", "RestartBackoff"]


@dataclass(frozen=True, kw_only=True)
class BackoffConfig:
    """The restart backoff schedule; Kubernetes' values by default (seconds)."""

    initial: float = 10.0
    max: float = 300.0
    reset_after: float | None = None
    """Run at least this long since the last restart and the schedule starts over;
    None: 2 x ``max`` (Kubernetes' rule)."""

    def __post_init__(self) -> None:
        for name in ("initial", "max"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"backoff {name} must be a finite number >= 0, not {value!r}")
        if self.max < self.initial:
            raise ValueError(f"backoff max ({self.max:g}s) must be >= initial ({self.initial:g}s)")
        if self.reset_after is not None and not self.reset_after >= 0:
            raise ValueError(f"backoff reset_after must be >= 0, not {self.reset_after!r}")

    @property
    def reset_period(self) -> float:
        return 2 * self.max if self.reset_after is None else self.reset_after

    @classmethod
    def capped(cls, cap: float | None) -> BackoffConfig:
        """Kubernetes' schedule with no delay above ``cap`` seconds (None: uncapped)."""
        if cap is None:
            return cls()
        if not (math.isfinite(cap) and cap >= 0):
            raise ValueError(f"the maximum backoff must be a number of seconds >= 0, not {cap!r}")
        default = cls()
        return cls(initial=min(default.initial, cap), max=min(default.max, cap))


DEFAULT_BACKOFF = BackoffConfig()


class RestartBackoff:
    """The backoff state of one container (one key of Kubernetes' ``flowcontrol.Backoff``).

    Call :meth:`remaining` with the finish time of the container's latest exit before
    restarting it: a positive result means "wait that long" (``CrashLoopBackOff``); zero
    means "restart now", and then call :meth:`restarted`.
    """

    def __init__(self, config: BackoffConfig = DEFAULT_BACKOFF) -> None:
        self.config = config
        self.window: float | None = None
        """The current backoff window (None: clean slate)."""
        self.last_update: float | None = None

    def _expired(self, event_time: float) -> bool:
        return self.last_update is None or event_time - self.last_update > self.config.reset_period

    def remaining(self, finished_at: float, now: float) -> float:
        """Seconds to wait before restarting a container that exited at ``finished_at``."""
        if self.window is None or self._expired(finished_at):
            return 0.0
        return max(0.0, finished_at + self.window - now)

    def restarted(self, finished_at: float, now: float) -> None:
        """Record a restart (of a container that exited at ``finished_at``) at ``now``."""
        if self.window is None or self._expired(finished_at):
            self.window = self.config.initial
        else:
            self.window = min(self.window * 2, self.config.max)
        self.last_update = now

    @property
    def delay(self) -> float:
        """The window a failure now would wait (for messages: ``back-off 20s ...``)."""
        return self.config.initial if self.window is None else self.window
