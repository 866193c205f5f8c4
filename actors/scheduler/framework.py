"""One scheduling decision: filter every node, score the feasible ones, pick the best.

This is the core of Kubernetes' scheduling framework, reduced to what Raftsman uses.
Plugins (:mod:`.plugins`) come in two kinds:

* a :class:`FilterPlugin` turns a pod into a per-node check (``prepare``: Kubernetes'
  PreFilter; None means "nothing to check for this pod", its Skip). A node passes when
  every check returns no reasons. As in Kubernetes, the checks of one node stop at the
  first plugin that rejects it, so a node contributes the reasons of one plugin.
* a :class:`ScorePlugin` turns a pod into a per-node raw score, optionally normalized over
  the feasible nodes to 0..100, and carries a weight.

:func:`schedule_pod` runs them: no node feasible gives a :class:`Decision` without a node,
the Kubernetes message (:func:`fit_error_message`) and the names of the plugins that
rejected nodes (so the queue knows which cluster events could help, :mod:`.queue`); one
feasible node is chosen without scoring; otherwise the highest weighted sum wins, ties
broken at random.

The decision is synchronous -- no checkpoint from the first filter to the returned
decision -- so it sees one consistent state of the cache.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .nodeinfo import NodeInfo
from .podinfo import PodInfo

__all__ = [
    "ClusterView",
    "NO_NODES",
    "NO_NODES_MESSAGE",
    "Decision",
    "FilterPlugin",
    "NodeCheck",
    "NodeScore",
    "Reasons",
    "ScorePlugin",
    "fit_error_message",
    "schedule_pod",
]

Reasons = tuple[str, ...]
"""Why a node does not fit a pod (Kubernetes' reason strings); empty when it fits."""

NodeCheck = Callable[[NodeInfo], Reasons]
NodeScore = Callable[[NodeInfo], int]

NO_NODES = "NoNodes"
"""Pseudo-plugin that "rejects" a pod when the cluster has no node at all."""
NO_NODES_MESSAGE = "no nodes available to schedule pods"


class ClusterView(Protocol):
    """What plugins read about the cluster; :class:`~.cache.SchedulerCache` provides it."""

    @property
    def nodes(self) -> list[NodeInfo]:
        """Nodes whose Node object is known."""
        ...

    def pods(self) -> Iterable[tuple[PodInfo, NodeInfo]]:
        """Every placed pod (bound or assumed) with its node."""
        ...

    def anti_affinity_pods(self) -> Iterable[tuple[PodInfo, NodeInfo]]:
        """Placed pods with required pod anti-affinity terms, with their nodes."""
        ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class FilterPlugin:
    name: str
    prepare: Callable[[PodInfo, ClusterView], NodeCheck | None]


@dataclass(frozen=True, slots=True)
class ScorePlugin:
    name: str
    weight: int
    prepare: Callable[[PodInfo, ClusterView], NodeScore | None]
    normalize: Callable[[list[int]], None] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A node to bind to, or why there is none."""

    node: str | None
    message: str = ""
    rejected_by: frozenset[str] = field(default_factory=frozenset)
    feasible: int = 0
    evaluated: int = 0


def fit_error_message(total: int, reasons: Iterable[Reasons]) -> str:
    """Kubernetes' ``FitError`` text: ``0/3 nodes are available: 1 Insufficient cpu, ...``.

    Each reason is counted once per node that gave it; the ``"<count> <reason>"`` strings
    are sorted as strings (Go's ``sort.Strings``), which is why ``1 node(s) had ...`` comes
    before ``2 Insufficient cpu``.
    """
    histogram: Counter[str] = Counter()
    for node_reasons in reasons:
        histogram.update(node_reasons)
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    message = f"0/{total} nodes are available"
    if parts:
        message += ": " + ", ".join(parts)
    return message + "."


def schedule_pod(
    pod: PodInfo,
    view: ClusterView,
    *,
    filters: Sequence[FilterPlugin],
    scores: Sequence[ScorePlugin],
    rng: random.Random,
) -> Decision:
    """Choose a node for ``pod`` from ``view.nodes`` (see the module doc)."""
    nodes = view.nodes
    if not nodes:
        return Decision(None, NO_NODES_MESSAGE, frozenset((NO_NODES,)))
    checks = [(p.name, check) for p in filters if (check := p.prepare(pod, view)) is not None]
    feasible: list[NodeInfo] = []
    failures: list[Reasons] = []
    rejected: set[str] = set()
    for node in nodes:
        for name, check in checks:
            reasons = check(node)
            if reasons:
                failures.append(reasons)
                rejected.add(name)
                break
        else:
            feasible.append(node)
    if not feasible:
        return Decision(
            None,
            fit_error_message(len(nodes), failures),
            frozenset(rejected),
            evaluated=len(nodes),
        )
    if len(feasible) == 1:
        return Decision(feasible[0].name, feasible=1, evaluated=len(nodes))
    totals = [0] * len(feasible)
    for plugin in scores:
        score = plugin.prepare(pod, view)
        if score is None:
            continue
        raw = [score(node) for node in feasible]
        if plugin.normalize is not None:
            plugin.normalize(raw)
        weight = plugin.weight
        for i, value in enumerate(raw):
            totals[i] += value * weight
    best = max(totals)
    winners = [node for node, total in zip(feasible, totals, strict=True) if total == best]
    chosen = winners[0] if len(winners) == 1 else rng.choice(winners)
    return Decision(chosen.name, feasible=len(feasible), evaluated=len(nodes))
