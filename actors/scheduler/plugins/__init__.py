"""The default plugins, in Kubernetes' order, with Kubernetes' default score weights.

* :mod:`.filters` -- per-node filters and their reason strings
* :mod:`.interpod` -- inter-pod affinity / anti-affinity (cluster-wide)
* :mod:`.scores` -- scores and normalizations
* :mod:`.taints`, :mod:`.nodeaffinity` -- matching rules shared by filters and scores

Filters run in :data:`DEFAULT_FILTERS` order and a node stops at the first that rejects
it (which decides the reason it contributes to the message). Weights are Kubernetes'
defaults (``pkg/scheduler/apis/config/v1/default_plugins.go``): TaintToleration 3,
NodeAffinity 2, InterPodAffinity 2, NodeResourcesFit 1, BalancedAllocation 1. Spreading a
controller's pods is done in Kubernetes by PodTopologySpread's system defaults (weight 2);
SelectorSpread here does the same job with the same weight. docs/scheduler.md has the table.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..framework import ClusterView, FilterPlugin, NodeCheck, NodeScore, ScorePlugin
from ..nodeinfo import NodeInfo
from ..podinfo import PodInfo
from . import filters, interpod, scores

__all__ = [
    "BALANCED_ALLOCATION",
    "DEFAULT_FILTERS",
    "DEFAULT_SCORES",
    "INTER_POD_AFFINITY",
    "NODE_AFFINITY",
    "NODE_NAME",
    "NODE_PORTS",
    "NODE_READY",
    "NODE_RESOURCES_FIT",
    "NODE_UNSCHEDULABLE",
    "PLUGIN_NAMES",
    "SELECTOR_SPREAD",
    "TAINT_TOLERATION",
]


def _always(pod: PodInfo) -> bool:
    return True


def _filter(
    name: str,
    check: Callable[[PodInfo, NodeInfo], filters.Reasons],
    applies: Callable[[PodInfo], bool] = _always,
) -> FilterPlugin:
    def prepare(pod: PodInfo, view: ClusterView) -> NodeCheck | None:
        return partial(check, pod) if applies(pod) else None

    return FilterPlugin(name, prepare)


def _score(
    name: str,
    weight: int,
    score: Callable[[PodInfo, NodeInfo], int],
    normalize: Callable[[list[int]], None] | None = None,
    applies: Callable[[PodInfo], bool] = _always,
) -> ScorePlugin:
    def prepare(pod: PodInfo, view: ClusterView) -> NodeScore | None:
        return partial(score, pod) if applies(pod) else None

    return ScorePlugin(name, weight, prepare, normalize)


def _prepare_interpod_filter(pod: PodInfo, view: ClusterView) -> NodeCheck | None:
    state = interpod.prepare_filter(pod, view)
    return None if state is None else partial(interpod.affinity_filter, state)


def _prepare_interpod_score(pod: PodInfo, view: ClusterView) -> NodeScore | None:
    weights = interpod.prepare_score(pod, view)
    return None if weights is None else partial(interpod.affinity_score, weights)


NODE_UNSCHEDULABLE = "NodeUnschedulable"
NODE_READY = "NodeReady"
NODE_NAME = "NodeName"
TAINT_TOLERATION = "TaintToleration"
NODE_AFFINITY = "NodeAffinity"
NODE_PORTS = "NodePorts"
NODE_RESOURCES_FIT = "NodeResourcesFit"
INTER_POD_AFFINITY = "InterPodAffinity"
BALANCED_ALLOCATION = "NodeResourcesBalancedAllocation"
SELECTOR_SPREAD = "SelectorSpread"

PLUGIN_NAMES = (
    NODE_UNSCHEDULABLE,
    NODE_READY,
    NODE_NAME,
    TAINT_TOLERATION,
    NODE_AFFINITY,
    NODE_PORTS,
    NODE_RESOURCES_FIT,
    INTER_POD_AFFINITY,
)
"""Every filter plugin, in the order they run."""

DEFAULT_FILTERS: tuple[FilterPlugin, ...] = (
    _filter(NODE_UNSCHEDULABLE, filters.node_unschedulable),
    _filter(NODE_READY, filters.node_ready),
    _filter(NODE_NAME, filters.node_name, lambda p: bool(p.pod.spec.node_name)),
    _filter(TAINT_TOLERATION, filters.taint_toleration),
    _filter(
        NODE_AFFINITY,
        filters.node_affinity,
        lambda p: bool(p.node_selector) or p.required_node_affinity is not None,
    ),
    _filter(NODE_PORTS, filters.node_ports, lambda p: bool(p.host_ports)),
    _filter(NODE_RESOURCES_FIT, filters.node_resources_fit),
    FilterPlugin(INTER_POD_AFFINITY, _prepare_interpod_filter),
)

DEFAULT_SCORES: tuple[ScorePlugin, ...] = (
    _score(TAINT_TOLERATION, 3, scores.taint_toleration_score, scores.normalize_reverse),
    _score(
        NODE_AFFINITY,
        2,
        scores.node_affinity_score,
        scores.normalize_max,
        lambda p: bool(p.preferred_node_affinity),
    ),
    _score(NODE_RESOURCES_FIT, 1, scores.least_allocated),
    _score(
        SELECTOR_SPREAD,
        2,
        scores.selector_spread,
        scores.normalize_reverse,
        lambda p: bool(p.owner_uid),
    ),
    ScorePlugin(INTER_POD_AFFINITY, 2, _prepare_interpod_score, scores.normalize_min_max),
    _score(BALANCED_ALLOCATION, 1, scores.balanced_allocation),
)
