"""Filters: can this pod run on this node? Pure functions of a pod and a node.

Each filter takes a :class:`~actors.scheduler.podinfo.PodInfo` and a
:class:`~actors.scheduler.nodeinfo.NodeInfo` and returns the reasons the node does not
fit -- an empty tuple when it fits. Reasons are Kubernetes' own strings, because they end
up in the pod's ``PodScheduled`` condition and ``FailedScheduling`` Event, where users
and tools read them (``0/3 nodes are available: 2 Insufficient cpu, ...``).

==================  ==========================================================
filter              fails when
==================  ==========================================================
NodeUnschedulable   ``spec.unschedulable`` (cordoned), unless the pod tolerates
                    ``node.kubernetes.io/unschedulable:NoSchedule``
NodeReady           the ``Ready`` condition is not ``True`` (no conditions: not
                    ready), unless the pod tolerates
                    ``node.kubernetes.io/not-ready:NoSchedule``
NodeName            ``spec.nodeName`` is set and names another node
TaintToleration     a ``NoSchedule`` or ``NoExecute`` taint is not tolerated
NodeAffinity        ``spec.nodeSelector`` or required node affinity does not match
NodePorts           a wanted host port is in use on the node
NodeResourcesFit    pod count, cpu, memory or another resource would exceed
                    ``status.allocatable``
==================  ==========================================================

Inter-pod affinity needs the whole cluster, not one node: it lives in :mod:`.interpod`.

Kubernetes has no NodeReady filter: its node lifecycle controller taints a node that is
not ready (``node.kubernetes.io/not-ready``) and TaintToleration does the rest. We check
the condition directly, so that a node agent that stops reporting is avoided even before
a controller reacts, and honour the same toleration.
"""

from __future__ import annotations

from proto.k8s import core_pb2

from ..framework import Reasons
from ..nodeinfo import NodeInfo
from ..podinfo import PodInfo
from .nodeaffinity import selector_matches_node
from .taints import NO_EXECUTE, NO_SCHEDULE, find_untolerated, tolerated

__all__ = [
    "ERR_NODE_AFFINITY",
    "ERR_NODE_NAME",
    "ERR_NODE_NOT_READY",
    "ERR_NODE_PORTS",
    "ERR_TOO_MANY_PODS",
    "ERR_UNSCHEDULABLE",
    "Reasons",
    "insufficient",
    "matches_node_selector",
    "node_affinity",
    "node_name",
    "node_ports",
    "node_ready",
    "node_resources_fit",
    "node_unschedulable",
    "taint_toleration",
    "untolerated_taint",
]

FITS: Reasons = ()

ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NOT_READY = "node(s) were not ready"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"

UNSCHEDULABLE_TAINT = core_pb2.Taint(key="node.kubernetes.io/unschedulable", effect=NO_SCHEDULE)
NOT_READY_TAINT = core_pb2.Taint(key="node.kubernetes.io/not-ready", effect=NO_SCHEDULE)


def insufficient(resource: str) -> str:
    """``Insufficient cpu``: Kubernetes' reason for a resource that does not fit."""
    return f"Insufficient {resource}"


def untolerated_taint(key: str, value: str) -> str:
    """``node(s) had untolerated taint {dedicated: gpu}``."""
    return f"node(s) had untolerated taint {{{key}: {value}}}"


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Reasons:
    if node.unschedulable and not tolerated(UNSCHEDULABLE_TAINT, pod.tolerations):
        return (ERR_UNSCHEDULABLE,)
    return FITS


def node_ready(pod: PodInfo, node: NodeInfo) -> Reasons:
    if not node.ready and not tolerated(NOT_READY_TAINT, pod.tolerations):
        return (ERR_NODE_NOT_READY,)
    return FITS


def node_name(pod: PodInfo, node: NodeInfo) -> Reasons:
    wanted = pod.pod.spec.node_name
    if wanted and wanted != node.name:
        return (ERR_NODE_NAME,)
    return FITS


def _schedule_blocking(taint: object) -> bool:
    return getattr(taint, "effect", "") in (NO_SCHEDULE, NO_EXECUTE)


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Reasons:
    if not node.taints:
        return FITS
    taint = find_untolerated(node.taints, pod.tolerations, _schedule_blocking)
    if taint is None:
        return FITS
    return (untolerated_taint(taint.key, taint.value),)


def matches_node_selector(pod: PodInfo, node: NodeInfo) -> bool:
    """``spec.nodeSelector`` and required node affinity both hold on ``node``."""
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return False
    required = pod.required_node_affinity
    if required is not None and not selector_matches_node(required, labels, node.name):
        return False
    return True


def node_affinity(pod: PodInfo, node: NodeInfo) -> Reasons:
    return FITS if matches_node_selector(pod, node) else (ERR_NODE_AFFINITY,)


def node_ports(pod: PodInfo, node: NodeInfo) -> Reasons:
    for wanted in pod.host_ports:
        if node.port_conflicts(wanted):
            return (ERR_NODE_PORTS,)
    return FITS


def _scalar_order(name: str) -> tuple[int, str]:
    return (0 if name == "ephemeral-storage" else 1, name)


def node_resources_fit(pod: PodInfo, node: NodeInfo) -> Reasons:
    """Kubernetes' ``fitsRequest``: pod count first, then each requested resource that
    exceeds what is left; a resource the pod does not request is never checked."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    want = pod.requests
    alloc, used = node.allocatable, node.requested
    if want.milli_cpu > 0 and want.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append(insufficient("cpu"))
    if want.memory > 0 and want.memory > alloc.memory - used.memory:
        reasons.append(insufficient("memory"))
    if want.scalars:
        for name in sorted(want.scalars, key=_scalar_order):
            amount = want.scalars[name]
            if amount > 0 and amount > alloc.scalars.get(name, 0) - used.scalars.get(name, 0):
                reasons.append(insufficient(name))
    return tuple(reasons)
