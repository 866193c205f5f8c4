"""Controllers: keys in a work queue, workers that reconcile them.

* :mod:`.workqueue` -- :class:`WorkQueue`, :func:`run_workers` and the sync error taxonomy
"""

from .workqueue import (
    DEFAULT_ITEM_BACKOFF,
    PermanentError,
    QueueShutDown,
    RateLimit,
    SyncError,
    TransientError,
    WorkQueue,
    WorkQueueError,
    run_workers,
)

__all__ = [
    "DEFAULT_ITEM_BACKOFF",
    "PermanentError",
    "QueueShutDown",
    "RateLimit",
    "SyncError",
    "TransientError",
    "WorkQueue",
    "WorkQueueError",
    "run_workers",
]
