"""The node lifecycle controller: lost nodes are noticed, tainted, and emptied -- carefully.

Node agents renew a Lease named after their node in ``kube-node-lease`` and post the
node's Ready condition. This controller, as Kubernetes' node lifecycle controller:

* marks a node whose agent went silent for ``node_monitor_grace_period`` (by the
  controller's own clock, since it last saw the lease or heartbeat change) Ready=Unknown,
  and taints it ``node.kubernetes.io/unreachable`` -- NoSchedule at once, NoExecute
  through a per-zone rate limit (Ready=False gives ``not-ready`` the same way);
* untaints a node whose Ready condition is True again (its agent posts it when it
  returns);
* evicts (deletes) the pods on a NoExecute-tainted node that do not tolerate the taint,
  at once, and those that tolerate it for ``tolerationSeconds``, that long after the
  taint's ``timeAdded`` (pods get 300 s tolerations by default from the API server);
* never evicts when *no* node is Ready (a control-plane partition must not empty the
  cluster) and slows down when most nodes of a zone are not Ready.

Submodules: :mod:`.health` (probe times), :mod:`.taints` (which taints, toleration
timing), :mod:`.disruption` (zone states, token buckets), :mod:`.controller` (the loop).
"""

from __future__ import annotations

from actors.controller import Controller
from actors.controllers.context import ControllerContext

from .controller import LEASE_NAMESPACE, NodeLifecycleController
from .disruption import Disruption, TokenBucket, ZoneState, zone_state
from .health import HealthTracker
from .taints import NOT_READY, UNREACHABLE, eviction_delay, tolerates

__all__ = [
    "LEASE_NAMESPACE",
    "NOT_READY",
    "UNREACHABLE",
    "Disruption",
    "HealthTracker",
    "NodeLifecycleController",
    "TokenBucket",
    "ZoneState",
    "eviction_delay",
    "new_controller",
    "tolerates",
    "zone_state",
]


def new_controller(ctx: ControllerContext) -> Controller:
    """The node lifecycle controller on ``ctx``'s shared informers."""
    return NodeLifecycleController(ctx)
