"""Which nodes a DaemonSet's pod belongs on: selectors, node affinity, taints.

Kubernetes decides per node with two answers (``NodeShouldRunDaemonPod``):

* **should run** -- the pod would be placed there now: the template's ``nodeName`` (if
  any) is this node, its ``nodeSelector`` and *required* node affinity match the node,
  and it tolerates every ``NoSchedule`` and ``NoExecute`` taint of the node;
* **should continue running** -- a pod already there may stay: the same, except that
  ``NoSchedule`` taints do not matter (they keep new pods off; they do not evict).

Daemon pods get Kubernetes' automatic tolerations (:func:`daemon_tolerations`): they
tolerate ``not-ready`` and ``unreachable`` ``NoExecute`` taints forever (a daemon is
about the node, and must not be evicted because the node has trouble) and the
``disk-pressure``, ``memory-pressure``, ``pid-pressure`` and ``unschedulable``
``NoSchedule`` taints, so a cordoned node keeps -- and gets -- its daemon pods; with
``hostNetwork`` also ``network-unavailable``. Node readiness itself plays no part: a
daemon pod goes to a NotReady node too, as in Kubernetes.

Everything here is pure: node and pod messages in, booleans out. Unknown operators
raise :class:`ValueError` naming them (the API server rejects such objects).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from proto.k8s import core_pb2

__all__ = [
    "Placement",
    "daemon_tolerations",
    "node_affinity_matches",
    "placement",
    "tolerates",
    "untolerated_taint",
]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

_AUTOMATIC = (
    (NOT_READY, "NoExecute"),
    (UNREACHABLE, "NoExecute"),
    (DISK_PRESSURE, "NoSchedule"),
    (MEMORY_PRESSURE, "NoSchedule"),
    (PID_PRESSURE, "NoSchedule"),
    (UNSCHEDULABLE, "NoSchedule"),
)

_LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True)
class Placement:
    should_run: bool
    should_continue_running: bool


def daemon_tolerations(spec: Any) -> list[Any]:
    """The tolerations of a daemon pod with ``spec`` (a PodSpec): its own plus the
    automatic ones it does not already have (same key and effect)."""
    out = [t for t in spec.tolerations]
    wanted = list(_AUTOMATIC)
    if spec.host_network:
        wanted.append((NETWORK_UNAVAILABLE, "NoSchedule"))
    for key, effect in wanted:
        if not any(t.key == key and t.effect == effect for t in out):
            out.append(core_pb2.Toleration(key=key, operator="Exists", effect=effect))
    return out


def tolerates(toleration: Any, taint: Any) -> bool:
    """Kubernetes' ToleratesTaint: effect (empty = any), key (empty with Exists = any),
    then value (``Equal``, the default) or anything (``Exists``)."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return bool(toleration.value == taint.value)
    raise ValueError(f"unknown toleration operator {operator!r} (allowed: Exists, Equal)")


def untolerated_taint(
    taints: Iterable[Any], tolerations: list[Any], effects: tuple[str, ...]
) -> Any | None:
    """The first taint with one of ``effects`` that no toleration tolerates, or None."""
    for taint in taints:
        if taint.effect in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _requirement_matches(req: Any, value: str | None) -> bool:
    op = req.operator
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(req.values) != 1:
            return False
        try:
            have, bound = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    raise ValueError(
        f"unknown node selector operator {op!r} (allowed: {', '.join(_LABEL_OPERATORS)})"
    )


def _term_matches(term: Any, node: Any) -> bool:
    if not term.match_expressions and not term.match_fields:
        return False  # an empty term selects nothing
    labels = node.metadata.labels
    for req in term.match_expressions:
        if not _requirement_matches(req, labels.get(req.key)):
            return False
    for req in term.match_fields:
        if req.key != "metadata.name":
            return False  # the only field Kubernetes supports here
        if not _requirement_matches(req, node.metadata.name):
            return False
    return True


def node_affinity_matches(spec: Any, node: Any) -> bool:
    """The pod ``spec``'s ``nodeSelector`` and required node affinity both match."""
    labels = node.metadata.labels
    if any(labels.get(k) != v for k, v in spec.node_selector.items()):
        return False
    affinity = spec.affinity.node_affinity
    if not affinity.HasField("required_during_scheduling_ignored_during_execution"):
        return True
    terms = affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    return any(_term_matches(term, node) for term in terms)


def placement(template_spec: Any, node: Any) -> Placement:
    """Should a daemon pod with ``template_spec`` run on ``node``, may one stay there?"""
    if template_spec.node_name and template_spec.node_name != node.metadata.name:
        return Placement(False, False)
    if not node_affinity_matches(template_spec, node):
        return Placement(False, False)
    tolerations = daemon_tolerations(template_spec)
    taints = list(node.spec.taints)
    if untolerated_taint(taints, tolerations, ("NoSchedule", "NoExecute")) is None:
        return Placement(True, True)
    evicting = untolerated_taint(taints, tolerations, ("NoExecute",))
    return Placement(False, evicting is None)
