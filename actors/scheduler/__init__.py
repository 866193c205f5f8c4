"""The scheduler: binds pending pods to nodes, like kube-scheduler.

* :mod:`.scheduler` -- :class:`Scheduler` (informers, loop, binds) and :func:`run_scheduler`
  (with leader election)
* :mod:`.queue` -- :class:`SchedulingQueue`: active, backoff and unschedulable pods
* :mod:`.cache` -- :class:`SchedulerCache`: nodes, bound and assumed pods
* :mod:`.nodeinfo`, :mod:`.podinfo`, :mod:`.resources` -- per-node aggregates, per-pod facts
* :mod:`.framework` -- one decision: filter, score, pick; the ``0/3 nodes`` message
* :mod:`.plugins` -- the filters and scores, with Kubernetes' reasons and weights
* :mod:`.events` -- cluster events and the plugins they can help
* :mod:`.metrics` -- counters and histograms

docs/scheduler.md describes the behaviour and the benchmark.
"""

from .cache import SchedulerCache
from .framework import Decision, fit_error_message, schedule_pod
from .metrics import SchedulerMetrics
from .nodeinfo import NodeInfo
from .podinfo import PodInfo
from .queue import QueuedPod, SchedulingQueue
from .scheduler import (
    DEFAULT_SCHEDULER_NAME,
    LEASE_NAME,
    Scheduler,
    SchedulerConfig,
    run_scheduler,
)

__all__ = [
    "DEFAULT_SCHEDULER_NAME",
    "LEASE_NAME",
    "Decision",
    "NodeInfo",
    "PodInfo",
    "QueuedPod",
    "Scheduler",
    "SchedulerCache",
    "SchedulerConfig",
    "SchedulerMetrics",
    "SchedulingQueue",
    "fit_error_message",
    "run_scheduler",
    "schedule_pod",
]
