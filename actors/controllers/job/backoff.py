"""How long a Job waits before replacing a failed pod.

Kubernetes delays the replacement of failed pods exponentially: 10 s after the first
failure since the last success, then 20 s, 40 s, ... capped (here at 6 minutes, the
classic ``MaxJobBackOff``). The clock starts when the last failed pod *finished*.

Kubernetes keeps the failure count in the controller's memory, so a restarted controller
forgets it. This module derives it from the pods instead -- the failed pods that finished
after the newest succeeded one -- which gives the same answer from any controller, before
or after a restart, as long as the finished pods are still there (they stay until the Job
is deleted). When a pod's finish time is not reported, it is estimated as Kubernetes
does: the latest container ``finishedAt`` if every container terminated, else the time
the pod's Ready condition turned False, else its deletion time minus its grace period,
else its creation time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["DEFAULT_POD_FAILURE_BACKOFF", "PodFailureBackoff", "finish_time"]


@dataclass(frozen=True, kw_only=True)
class PodFailureBackoff:
    """The delay policy: ``initial`` seconds, doubling per failure, at most ``maximum``."""

    initial: float = 10.0
    maximum: float = 360.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError(
                f"backoff delays must be >= 0, not initial={self.initial} maximum={self.maximum}"
            )

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (0 for none)."""
        if failures <= 0:
            return 0.0
        # Double step by step so a long failure streak cannot overflow.
        wait = self.initial
        for _ in range(failures - 1):
            if wait >= self.maximum:
                break
            wait *= 2
        return min(wait, self.maximum)

    def remaining(self, succeeded: Iterable[Any], failed: Iterable[Any], now: datetime) -> float:
        """Seconds still to wait at ``now`` before a new pod may replace the ``failed``
        pods (the Job's finished pods, split by outcome)."""
        last_success = max((finish_time(p) for p in succeeded), default=None)
        failures = [
            t for t in (finish_time(p) for p in failed) if last_success is None or t > last_success
        ]
        if not failures:
            return 0.0
        elapsed = (now - max(failures)).total_seconds()
        return max(0.0, self.delay(len(failures)) - elapsed)


DEFAULT_POD_FAILURE_BACKOFF = PodFailureBackoff()


def finish_time(pod: Any) -> datetime:
    """When ``pod`` finished (see the module doc for the estimate used)."""
    statuses = list(pod.status.container_statuses)
    if statuses and all(
        s.state.HasField("terminated") and s.state.terminated.HasField("finished_at")
        for s in statuses
    ):
        return max(s.state.terminated.finished_at.ToDatetime(tzinfo=UTC) for s in statuses)
    for condition in pod.status.conditions:
        if (
            condition.type == "Ready"
            and condition.status == "False"
            and condition.HasField("last_transition_time")
        ):
            return condition.last_transition_time.ToDatetime(tzinfo=UTC)
    meta = pod.metadata
    if meta.HasField("deletion_timestamp"):
        grace = (
            meta.deletion_grace_period_seconds
            if meta.HasField("deletion_grace_period_seconds")
            else 0
        )
        return meta.deletion_timestamp.ToDatetime(tzinfo=UTC) - timedelta(seconds=grace)
    return meta.creation_timestamp.ToDatetime(tzinfo=UTC)
