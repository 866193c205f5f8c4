"""The DaemonSet controller: one pod on every node that should run one.

A DaemonSet runs a copy of its pod template on each eligible node -- a log shipper, a
node exporter, a network agent. Eligibility (:mod:`.placement`) is Kubernetes': the
template's ``nodeSelector`` and required node affinity, and the node's ``NoSchedule`` /
``NoExecute`` taints against the template's tolerations plus the automatic daemon
tolerations (so cordoned and NotReady nodes keep their daemons). The controller
(:class:`DaemonSetController`, machinery in :mod:`.controller`) follows nodes as they
join, change and leave, replaces failed daemon pods with a backoff, rolls template
changes out node by node within ``maxUnavailable`` (``RollingUpdate``, the default) or
leaves them to manual deletion (``OnDelete``), and reports the DaemonSet status
counters. Daemon pods are bound to their node directly (``spec.nodeName``) and also
carry Kubernetes' ``metadata.name`` node affinity.
"""

from .controller import (
    HASH_LABEL,
    TEMPLATE_GENERATION_LABEL,
    DaemonSetController,
    max_unavailable,
    new_controller,
    template_hash,
)
from .placement import Placement, daemon_tolerations, node_affinity_matches, placement, tolerates

__all__ = [
    "HASH_LABEL",
    "TEMPLATE_GENERATION_LABEL",
    "DaemonSetController",
    "Placement",
    "daemon_tolerations",
    "max_unavailable",
    "new_controller",
    "node_affinity_matches",
    "placement",
    "template_hash",
    "tolerates",
]
