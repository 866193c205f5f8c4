"""What a supervisor needs to know about a child: the specs, as frozen dataclasses.

A :class:`ChildSpec` names a child and says how to run one incarnation of it (``target``,
an async callable taking no arguments) and when to run it again (:class:`RestartPolicy`).
The supervisor calls ``target`` afresh for every incarnation, so a restarted child starts
from clean state; anything that must survive a crash lives outside it (its mailbox, the
store). A :class:`RestartIntensity` says how much crashing a supervisor tolerates before it
gives up and escalates.

Specs are values: immutable, comparable, safe to share and to reuse for several
supervisors.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_INTENSITY", "ChildSpec", "RestartIntensity", "RestartPolicy"]


class RestartPolicy(enum.Enum):
    """When a child that has terminated is started again (Erlang/OTP's restart types).

    ===========  =========================  ================================
    policy       returned normally          raised an exception (crashed)
    ===========  =========================  ================================
    PERMANENT    restarted (with backoff)   restarted (with backoff)
    TRANSIENT    done, not restarted        restarted (with backoff)
    TEMPORARY    done, not restarted        done, not restarted (logged)
    ===========  =========================  ================================

    A permanent child returning is treated like a crash for pacing: it is restarted
    after the backoff delay and counts toward the restart intensity, so a child that
    returns at once in a loop cannot spin the supervisor.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


@dataclass(frozen=True, kw_only=True, slots=True)
class RestartIntensity:
    """How many restarts of one child a supervisor tolerates within a sliding window.

    When a child terminates and needs a restart, and that makes more than
    ``max_restarts`` terminations of this child within the last ``window`` seconds, the
    supervisor does not restart it: it cancels every child and raises
    :class:`~actors.runtime.errors.TooManyRestarts`. ``max_restarts=0`` escalates on
    the first termination that would need a restart.

    Counted per child, not per supervisor: backoff already paces each child, and a noisy
    child does not use up its healthy siblings' allowance.
    """

    max_restarts: int = 10
    window: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int):
            raise TypeError(f"max_restarts must be int, not {type(self.max_restarts).__name__}")
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, not {self.max_restarts!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int | float):
            raise TypeError(f"window must be a number, not {type(self.window).__name__}")
        if not (self.window > 0 and math.isfinite(self.window)):
            raise ValueError(f"window must be positive and finite, not {self.window!r}")


DEFAULT_INTENSITY = RestartIntensity()
"""At most 10 restarts of one child within 60 s."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChildSpec:
    """One supervised child: its unique name, how to run it, and when to restart it."""

    name: str
    """Unique among the supervisor's live children; used in logs and errors."""
    target: Callable[[], Awaitable[object]]
    """Runs one incarnation; called again for each restart. Its return value is ignored."""
    restart: RestartPolicy = RestartPolicy.PERMANENT

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, not {self.name!r}")
        if not callable(self.target):
            raise TypeError(f"target must be callable, not {self.target!r}")
        if not isinstance(self.restart, RestartPolicy):
            raise TypeError(f"restart must be a RestartPolicy, not {self.restart!r}")
