"""The scheduler's counters and latency histograms, kept as plain attributes.

Named after kube-scheduler's metrics so that a Prometheus exporter can publish them
unchanged later: ``schedule_attempts_total{result}`` (``scheduled``, ``unschedulable``,
``error``), ``binding_duration_seconds`` and ``pod_scheduling_duration_seconds`` (from
entering the queue to a successful bind), ``scheduling_algorithm_duration_seconds``
(filter + score of one attempt).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DEFAULT_BUCKETS", "Histogram", "SchedulerMetrics"]

DEFAULT_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0
)  # fmt: skip


@dataclass
class Histogram:
    """Observations in cumulative-style buckets (upper bounds, +Inf last), sum and count."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0
    count: int = 0
    max: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1
        self.max = max(self.max, value)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0


@dataclass
class SchedulerMetrics:
    attempts: Counter[str] = field(default_factory=Counter)
    """``schedule_attempts_total`` by result: scheduled, unschedulable, error."""
    binding_duration: Histogram = field(default_factory=Histogram)
    scheduling_algorithm_duration: Histogram = field(default_factory=Histogram)
    pod_scheduling_duration: Histogram = field(default_factory=Histogram)
    bind_failures: Counter[str] = field(default_factory=Counter)
    """Failed binds by error type (Conflict, NotFound, ...)."""

    @property
    def total_attempts(self) -> int:
        return sum(self.attempts.values())
