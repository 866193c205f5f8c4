"""Lease-based leader election: of several replicas, at most one acts at a time.

::

    config = LeaderElectionConfig(lock_name="kube-scheduler")
    async with trio.open_nursery() as nursery:
        elector = await nursery.start(run_leader_elected, api, config, schedule_forever)

* :mod:`.config` -- :class:`LeaderElectionConfig`: the Lease, the identity, the timings
* :mod:`.lock` -- :class:`LeaseRecord`, the :class:`LeaseLock` seam, :class:`ApiLeaseLock`
* :mod:`.elector` -- :class:`LeaderElector` and :func:`run_leader_elected`: the algorithm
  and why a leader that cannot renew has stopped before anyone else starts

See docs/leader-election.md for the timings to choose.
"""

from .config import JITTER_FACTOR, LeaderElectionConfig, default_identity
from .elector import RELEASE_TIMEOUT, LeaderElector, run_leader_elected
from .lock import ApiLeaseLock, LeaseLock, LeaseRecord, lease_from_record, record_from_lease

__all__ = [
    "JITTER_FACTOR",
    "RELEASE_TIMEOUT",
    "ApiLeaseLock",
    "LeaderElectionConfig",
    "LeaderElector",
    "LeaseLock",
    "LeaseRecord",
    "default_identity",
    "lease_from_record",
    "record_from_lease",
    "run_leader_elected",
]
