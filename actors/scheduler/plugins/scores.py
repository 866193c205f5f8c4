"""Scores: how good is this node for this pod? Kubernetes' formulas, in integers.

Each score function maps a pod and a feasible node to a raw number; some raw numbers are
then normalized over all feasible nodes into 0..100 (``MAX_NODE_SCORE``) by the
functions at the end of this module. The framework multiplies each plugin's normalized
score by its weight, adds them up, and picks the highest node (ties at random).

=====================  ====================================================  =========
score                  raw value                                             normalize
=====================  ====================================================  =========
LeastAllocated         mean over cpu, memory of (free after placing) * 100   --
                       / allocatable, using the non-zero request view
BalancedAllocation     (1 - |cpu fraction - memory fraction| / 2) * 100      --
NodeAffinity           sum of weights of matching preferred terms            max
TaintToleration        count of untolerated ``PreferNoSchedule`` taints      reverse
SelectorSpread         pods on the node with the same controller owner       reverse
InterPodAffinity       :mod:`.interpod`                                      min-max
=====================  ====================================================  =========

"max": ``100 * s / max``; "reverse": ``100 - 100 * s / max`` (all 100 when the max is
0); "min-max": ``100 * (s - min) / (max - min)``. These are Kubernetes'
``DefaultNormalizeScore`` and InterPodAffinity's normalization.
"""

from __future__ import annotations

from ..nodeinfo import NodeInfo
from ..podinfo import PodInfo
from .nodeaffinity import term_matches
from .taints import PREFER_NO_SCHEDULE, tolerates

__all__ = [
    "MAX_NODE_SCORE",
    "balanced_allocation",
    "least_allocated",
    "node_affinity_score",
    "normalize_max",
    "normalize_min_max",
    "normalize_reverse",
    "selector_spread",
    "taint_toleration_score",
]

MAX_NODE_SCORE = 100


def _least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """Kubernetes' NodeResourcesFit ``LeastAllocated`` strategy, cpu and memory weight 1."""
    used, want, alloc = node.non_zero_requested, pod.non_zero_requests, node.allocatable
    cpu = _least_requested(used.milli_cpu + want.milli_cpu, alloc.milli_cpu)
    memory = _least_requested(used.memory + want.memory, alloc.memory)
    return (cpu + memory) // 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """Kubernetes' NodeResourcesBalancedAllocation for two resources: nodes whose cpu and
    memory would be used in the same proportion score higher."""
    used, want, alloc = node.non_zero_requested, pod.non_zero_requests, node.allocatable
    fractions = []
    for requested, capacity in (
        (used.milli_cpu + want.milli_cpu, alloc.milli_cpu),
        (used.memory + want.memory, alloc.memory),
    ):
        if capacity:
            fractions.append(min(1.0, requested / capacity))
    if len(fractions) < 2:
        return MAX_NODE_SCORE
    std = abs(fractions[0] - fractions[1]) / 2
    return int((1 - std) * MAX_NODE_SCORE)


def node_affinity_score(pod: PodInfo, node: NodeInfo) -> int:
    """Sum of the weights of the pod's preferred node affinity terms that match."""
    return sum(
        t.weight
        for t in pod.preferred_node_affinity
        if term_matches(t.preference, node.labels, node.name)
    )


def _prefer_no_schedule_toleration(toleration: object) -> bool:
    return getattr(toleration, "effect", "") in ("", PREFER_NO_SCHEDULE)


def taint_toleration_score(pod: PodInfo, node: NodeInfo) -> int:
    """How many ``PreferNoSchedule`` taints the pod does not tolerate (lower is better)."""
    if not node.taints:
        return 0
    tolerations = [t for t in pod.tolerations if _prefer_no_schedule_toleration(t)]
    return sum(
        1
        for taint in node.taints
        if taint.effect == PREFER_NO_SCHEDULE and not any(tolerates(t, taint) for t in tolerations)
    )


def selector_spread(pod: PodInfo, node: NodeInfo) -> int:
    """How many pods of the same controller (a ReplicaSet, a Job...) the node runs
    (lower is better)."""
    return node.owners.get(pod.owner_uid, 0) if pod.owner_uid else 0


def normalize_max(scores: list[int]) -> None:
    top = max(scores, default=0)
    if top > 0:
        scores[:] = [MAX_NODE_SCORE * s // top for s in scores]


def normalize_reverse(scores: list[int]) -> None:
    top = max(scores, default=0)
    if top > 0:
        scores[:] = [MAX_NODE_SCORE - MAX_NODE_SCORE * s // top for s in scores]
    else:
        scores[:] = [MAX_NODE_SCORE] * len(scores)


def normalize_min_max(scores: list[int]) -> None:
    if not scores:
        return
    low, high = min(scores), max(scores)
    spread = high - low
    scores[:] = [int(MAX_NODE_SCORE * (s - low) / spread) if spread > 0 else 0 for s in scores]
