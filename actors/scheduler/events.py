"""Cluster events, and which filters each one could turn from "no" to "yes".

A pod that no node fits waits in the scheduling queue's unschedulable set until something
changes that could make it fit. Retrying every such pod on every change would be a busy
loop in a busy cluster (each bind is a change), so -- like Kubernetes' queueing hints --
the queue remembers which filter plugins rejected the pod and moves it back only on an
event that one of those plugins cares about.

===========================  =================================================
event                        plugins it can help
===========================  =================================================
NodeAdd                      all (and a pod that saw no node at all)
NodeAllocatableChange        NodeResourcesFit
NodeLabelChange              NodeAffinity, InterPodAffinity (topology labels)
NodeTaintChange              TaintToleration
NodeSchedulableChange        NodeUnschedulable
NodeReadyChange              NodeReady
AssignedPodDelete            NodeResourcesFit, NodePorts, InterPodAffinity
  (deleted or finished)
AssignedPodAdd               InterPodAffinity (affinity wants company)
AssignedPodLabelChange       InterPodAffinity
NamespaceLabelChange         InterPodAffinity (namespaceSelector)
===========================  =================================================

:func:`node_events` compares two versions of a Node and names the events between them; a
heartbeat that changes nothing above yields none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .framework import NO_NODES
from .nodeinfo import is_ready
from .plugins import (
    INTER_POD_AFFINITY,
    NODE_AFFINITY,
    NODE_PORTS,
    NODE_READY,
    NODE_RESOURCES_FIT,
    NODE_UNSCHEDULABLE,
    PLUGIN_NAMES,
    TAINT_TOLERATION,
)

__all__ = [
    "ASSIGNED_POD_ADD",
    "ASSIGNED_POD_DELETE",
    "ASSIGNED_POD_LABEL_CHANGE",
    "ClusterEvent",
    "NAMESPACE_LABEL_CHANGE",
    "NODE_ADD",
    "NODE_ALLOCATABLE_CHANGE",
    "NODE_LABEL_CHANGE",
    "NODE_READY_CHANGE",
    "NODE_SCHEDULABLE_CHANGE",
    "NODE_TAINT_CHANGE",
    "node_events",
]


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    name: str
    plugins: frozenset[str]

    def helps(self, rejected_by: frozenset[str]) -> bool:
        """Whether a pod rejected by ``rejected_by`` might fit after this event (a pod
        with no recorded rejection is always retried)."""
        return not rejected_by or not self.plugins.isdisjoint(rejected_by)


def _event(name: str, *plugins: str) -> ClusterEvent:
    return ClusterEvent(name, frozenset(plugins))


NODE_ADD = _event("NodeAdd", NO_NODES, *PLUGIN_NAMES)
NODE_ALLOCATABLE_CHANGE = _event("NodeAllocatableChange", NODE_RESOURCES_FIT)
NODE_LABEL_CHANGE = _event("NodeLabelChange", NODE_AFFINITY, INTER_POD_AFFINITY)
NODE_TAINT_CHANGE = _event("NodeTaintChange", TAINT_TOLERATION)
NODE_SCHEDULABLE_CHANGE = _event("NodeSchedulableChange", NODE_UNSCHEDULABLE)
NODE_READY_CHANGE = _event("NodeReadyChange", NODE_READY)
ASSIGNED_POD_DELETE = _event(
    "AssignedPodDelete", NODE_RESOURCES_FIT, NODE_PORTS, INTER_POD_AFFINITY
)
ASSIGNED_POD_ADD = _event("AssignedPodAdd", INTER_POD_AFFINITY)
ASSIGNED_POD_LABEL_CHANGE = _event("AssignedPodLabelChange", INTER_POD_AFFINITY)
NAMESPACE_LABEL_CHANGE = _event("NamespaceLabelChange", INTER_POD_AFFINITY)


def node_events(old: Any, new: Any) -> list[ClusterEvent]:
    """The events between two versions of one Node (empty for a mere heartbeat)."""
    events = []
    if dict(old.status.allocatable) != dict(new.status.allocatable):
        events.append(NODE_ALLOCATABLE_CHANGE)
    if dict(old.metadata.labels) != dict(new.metadata.labels):
        events.append(NODE_LABEL_CHANGE)
    if list(old.spec.taints) != list(new.spec.taints):
        events.append(NODE_TAINT_CHANGE)
    if old.spec.unschedulable != new.spec.unschedulable:
        events.append(NODE_SCHEDULABLE_CHANGE)
    if is_ready(old) != is_ready(new):
        events.append(NODE_READY_CHANGE)
    return events
