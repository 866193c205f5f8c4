"""What every controller of the controller manager is built from.

Each controller module exposes ``new_controller(ctx: ControllerContext) -> Controller``:
it asks ``ctx.informers`` for the informers it reads (shared with the other controllers
of the process: one pod watch for all of them), wires their handlers to its work queue,
and returns the :class:`~actors.controller.Controller`. The manager runs every returned
controller as a supervised actor once it holds the leader lease.

:class:`ControllerOptions` holds the tunables a cluster operator may change, with
Kubernetes' defaults; ``raftsman up`` passes shorter ones so a local cluster reacts in
seconds (see docs/controllers.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.client import ApiClient
from actors.controller import EventRecorder, InformerFactory

__all__ = ["ControllerContext", "ControllerOptions"]


@dataclass(frozen=True, kw_only=True)
class ControllerOptions:
    workers: int = 5
    """Concurrent reconciles per controller (Kubernetes' --concurrent-*-syncs is 5)."""
    node_monitor_grace_period: float = 40.0
    """Seconds without a node Lease renewal before the node is Ready=Unknown."""
    node_eviction_rate: float = 0.1
    """Nodes per second whose pods may be evicted while most nodes look healthy."""
    secondary_node_eviction_rate: float = 0.01
    """The same while the zone is partially disrupted (most nodes unreachable)."""
    unhealthy_zone_threshold: float = 0.55
    """Fraction of not-Ready nodes above which evictions slow to the secondary rate."""
    default_toleration_seconds: int = 300
    """tolerationSeconds of the not-ready/unreachable tolerations pods get by default."""
    terminated_pod_gc_threshold: int = 12500
    node_monitor_period: float = 5.0
    """Seconds between the node lifecycle controller's passes over every node."""
    node_startup_grace_period: float = 60.0
    """node_monitor_grace_period for a node that never posted a Ready condition."""
    large_cluster_size_threshold: int = 50
    """A partially disrupted zone of at most this many nodes stops evictions (rate 0)."""
    orphaned_pod_quarantine: float = 40.0
    """Seconds a pod's node must stay missing before pod GC force-deletes the pod."""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ControllerContext:
    api: ApiClient
    informers: InformerFactory
    recorder: EventRecorder
    options: ControllerOptions = ControllerOptions()
