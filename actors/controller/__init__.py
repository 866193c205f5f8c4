"""Controllers: keys in a work queue, workers that reconcile them.

* :mod:`.workqueue` -- :class:`WorkQueue`, :func:`run_workers` and the sync error taxonomy
* :mod:`.cache` -- the informer's indexed :class:`Cache`, :func:`object_key`, :func:`split_key`
* :mod:`.informer` -- :class:`Informer` (list + watch into a cache), :class:`InformerFactory`
* :mod:`.controller` -- :class:`Controller`: informers -> keys -> reconcile
* :mod:`.events` -- :class:`EventRecorder`, Events that never block a loop
* :mod:`.selectors` -- matching LabelSelector messages against labels
* :mod:`.leaderelection` -- :class:`LeaderElector`, :func:`run_leader_elected` (Lease-based)
"""

from .cache import Cache, object_key, split_key
from .controller import Controller
from .events import NORMAL, WARNING, EventRecorder, object_reference
from .informer import Handlers, Informer, InformerFactory, enqueue_on_change
from .leaderelection import (
    ApiLeaseLock,
    LeaderElectionConfig,
    LeaderElector,
    LeaseLock,
    LeaseRecord,
    run_leader_elected,
)
from .selectors import selector_matches, selector_to_string
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
    "NORMAL",
    "WARNING",
    "Cache",
    "Controller",
    "EventRecorder",
    "Handlers",
    "Informer",
    "InformerFactory",
    "enqueue_on_change",
    "object_key",
    "object_reference",
    "selector_matches",
    "selector_to_string",
    "split_key",
    "DEFAULT_ITEM_BACKOFF",
    "PermanentError",
    "QueueShutDown",
    "RateLimit",
    "SyncError",
    "TransientError",
    "WorkQueue",
    "WorkQueueError",
    "run_workers",
    "ApiLeaseLock",
    "LeaderElectionConfig",
    "LeaderElector",
    "LeaseLock",
    "LeaseRecord",
    "run_leader_elected",
]
