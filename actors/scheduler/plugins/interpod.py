"""Inter-pod affinity and anti-affinity: where a pod may go given where other pods are.

Unlike the other filters this one needs the whole cluster, so it works in two steps, as
Kubernetes' InterPodAffinity plugin does. :func:`prepare_filter` walks the placed pods
once per scheduling attempt and counts, per topology pair ``(topologyKey, value of that
label on the pod's node)``:

* ``affinity`` -- pods matching *all* of the incoming pod's required affinity terms;
* ``anti_affinity`` -- pods matching each of its required anti-affinity terms;
* ``existing_anti_affinity`` -- placed pods whose *own* required anti-affinity terms
  match the incoming pod (anti-affinity is symmetric: a pod that refuses company keeps
  newcomers away too).

Then :func:`affinity_filter` answers per node with dictionary lookups. A node fails, in
this order (reasons are Kubernetes'):

1. ``node(s) didn't match pod affinity rules`` -- the node lacks one of the terms'
   topology labels, or no matching pod runs in its domain for some term. Exception, so
   that the first pod of a group with affinity to itself can start: when no pod in the
   cluster matches the terms and the pod matches its own terms, any node that has the
   topology labels passes;
2. ``node(s) didn't match pod anti-affinity rules`` -- a pod matching one of the
   anti-affinity terms runs in the node's domain for that term;
3. ``node(s) didn't satisfy existing pods anti-affinity rules``.

A term's namespaces are those it lists plus those its ``namespaceSelector`` selects (an
empty selector: all); with neither, the incoming pod's own namespace. Any node label can
be a topology key (``kubernetes.io/hostname`` for "not on the same node",
``topology.kubernetes.io/zone`` for "not in the same zone").

The score (:func:`prepare_score` / :func:`affinity_score`) adds each preferred affinity
term's weight, and subtracts each preferred anti-affinity term's weight, for every
matching pod in the node's domain. Kubernetes also scores the *placed* pods' preferred
terms towards the incoming pod; we do not (yet).

Cost: one pass over the placed pods per attempt, only for pods that have terms (or when
some placed pod has required anti-affinity, a pass over those pods only).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..framework import ClusterView, Reasons
from ..nodeinfo import NodeInfo
from ..podinfo import PodInfo
from .filters import FITS

__all__ = [
    "ERR_AFFINITY",
    "ERR_ANTI_AFFINITY",
    "ERR_EXISTING_ANTI_AFFINITY",
    "AffinityState",
    "affinity_filter",
    "affinity_score",
    "prepare_filter",
    "prepare_score",
]

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class AffinityState:
    pod: PodInfo
    affinity: Counter[Pair]
    anti_affinity: Counter[Pair]
    existing_anti_affinity: Counter[Pair]
    matches_own_terms: bool


def prepare_filter(pod: PodInfo, view: ClusterView) -> AffinityState | None:
    """Count topology pairs for ``pod`` (module doc); None when nothing can fail."""
    ns_labels = view.namespace_labels
    existing: Counter[Pair] = Counter()
    for other, node in view.anti_affinity_pods():
        if node.node is None:
            continue
        for term in other.required_anti_affinity:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(pod, ns_labels):
                existing[(term.topology_key, value)] += 1
    if not pod.required_affinity and not pod.required_anti_affinity and not existing:
        return None
    affinity: Counter[Pair] = Counter()
    anti: Counter[Pair] = Counter()
    if pod.required_affinity or pod.required_anti_affinity:
        for other, node in view.pods():
            if node.node is None:
                continue
            labels = node.labels
            if pod.required_affinity and all(
                t.matches(other, ns_labels) for t in pod.required_affinity
            ):
                for term in pod.required_affinity:
                    value = labels.get(term.topology_key)
                    if value is not None:
                        affinity[(term.topology_key, value)] += 1
            for term in pod.required_anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and term.matches(other, ns_labels):
                    anti[(term.topology_key, value)] += 1
    own = all(t.matches(pod, ns_labels) for t in pod.required_affinity)
    return AffinityState(pod, affinity, anti, existing, own)


def affinity_filter(state: AffinityState, node: NodeInfo) -> Reasons:
    labels = node.labels
    terms = state.pod.required_affinity
    if terms:
        found = True
        for term in terms:
            value = labels.get(term.topology_key)
            if value is None:
                return (ERR_AFFINITY,)
            if state.affinity[(term.topology_key, value)] <= 0:
                found = False
        if not found and not (not state.affinity and state.matches_own_terms):
            return (ERR_AFFINITY,)
    for term in state.pod.required_anti_affinity:
        value = labels.get(term.topology_key)
        if value is not None and state.anti_affinity[(term.topology_key, value)] > 0:
            return (ERR_ANTI_AFFINITY,)
    if state.existing_anti_affinity:
        for pair in labels.items():
            if state.existing_anti_affinity[pair] > 0:
                return (ERR_EXISTING_ANTI_AFFINITY,)
    return FITS


def prepare_score(pod: PodInfo, view: ClusterView) -> Counter[Pair] | None:
    """Summed weights per topology pair for ``pod``'s preferred terms; None without any."""
    if not pod.preferred_affinity and not pod.preferred_anti_affinity:
        return None
    ns_labels = view.namespace_labels
    weights: Counter[Pair] = Counter()
    for other, node in view.pods():
        if node.node is None:
            continue
        for term in pod.preferred_affinity:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(other, ns_labels):
                weights[(term.topology_key, value)] += term.weight
        for term in pod.preferred_anti_affinity:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(other, ns_labels):
                weights[(term.topology_key, value)] -= term.weight
    return weights


def affinity_score(weights: Counter[Pair], node: NodeInfo) -> int:
    labels = node.labels
    return sum(w for (key, value), w in weights.items() if labels.get(key) == value)
