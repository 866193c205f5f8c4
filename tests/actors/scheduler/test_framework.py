"""One decision end to end over a cache: the message when nothing fits, the choice when
several nodes do."""

from __future__ import annotations

import random
from collections import Counter

from actors.scheduler import Decision, SchedulerCache, fit_error_message, schedule_pod
from actors.scheduler.framework import NO_NODES
from actors.scheduler.plugins import DEFAULT_FILTERS, DEFAULT_SCORES
from tests.actors.scheduler.objects import cluster, info, node, pod

GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def decide(p: object, cache: SchedulerCache, seed: int = 1) -> Decision:
    return schedule_pod(
        info(p), cache, filters=DEFAULT_FILTERS, scores=DEFAULT_SCORES, rng=random.Random(seed)
    )


def test_message_counts_reasons_per_node_sorted_like_kubernetes() -> None:
    cache = cluster(node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="8", taints=[GPU]))
    decision = decide(pod("p", cpu="2"), cache)
    assert decision.node is None
    # Go's sort.Strings over "<count> <reason>": "1 node(s)..." sorts before "2 Insufficient".
    assert decision.message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
        "2 Insufficient cpu."
    )
    assert decision.rejected_by == {"NodeResourcesFit", "TaintToleration"}


def test_a_node_gives_the_reasons_of_the_first_filter_that_rejects_it() -> None:
    cache = cluster(
        node("cordoned", cpu="1", unschedulable=True),
        node("small", cpu="1", memory="1Gi"),
    )
    decision = decide(pod("p", cpu="2", memory="2Gi"), cache)
    assert decision.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) were unschedulable."
    )


def test_message_sorts_as_strings_not_numbers() -> None:
    reasons = [("Insufficient cpu",)] * 10 + [("node(s) were not ready",)] * 2
    assert fit_error_message(12, reasons) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were not ready."
    )


def test_no_nodes_at_all() -> None:
    decision = decide(pod("p"), cluster())
    assert decision.node is None
    assert decision.message == "no nodes available to schedule pods"
    assert decision.rejected_by == {NO_NODES}


def place_all(cache: SchedulerCache, pods: list[object], seed: int = 7) -> Counter[str]:
    rng = random.Random(seed)
    placed: Counter[str] = Counter()
    for p in pods:
        pi = info(p)
        decision = schedule_pod(pi, cache, filters=DEFAULT_FILTERS, scores=DEFAULT_SCORES, rng=rng)
        assert decision.node is not None, decision.message
        cache.assume(pi, decision.node)
        placed[decision.node] += 1
    return placed


def test_replicas_spread_evenly_over_identical_nodes() -> None:
    cache = cluster(node("a"), node("b"), node("c"))
    replicas = [pod(f"web-{i}", cpu="100m", memory="64Mi", owner="web") for i in range(9)]
    assert place_all(cache, replicas) == {"a": 3, "b": 3, "c": 3}


def test_least_allocated_prefers_the_emptier_node() -> None:
    cache = cluster(node("busy"), node("idle"), pods=(pod("x", cpu="3", node_name="busy"),))
    assert decide(pod("p", cpu="500m"), cache).node == "idle"


def test_prefer_no_schedule_taint_is_avoided_while_there_is_a_choice() -> None:
    soft = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}
    cache = cluster(node("spot", cpu="64", memory="256Gi", taints=[soft]), node("plain"))
    assert decide(pod("p", cpu="100m"), cache).node == "plain"
    alone = cluster(node("spot", taints=[soft]))
    assert decide(pod("p"), alone).node == "spot"


def test_preferred_node_affinity_outweighs_a_less_loaded_node() -> None:
    cache = cluster(
        node("ssd", labels={"disk": "ssd"}),
        node("hdd", labels={"disk": "hdd"}),
        pods=(pod("x", cpu="2", memory="4Gi", node_name="ssd"),),
    )
    p = pod(
        "p",
        cpu="100m",
        spec={
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "preference": {"matchExpressions": [
                            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}
                    ]
                }
            }
        },
    )  # fmt: skip
    assert decide(p, cache).node == "ssd"


def test_ties_are_broken_at_random() -> None:
    cache = cluster(node("a"), node("b"))
    chosen = {decide(pod("p"), cache, seed=s).node for s in range(20)}
    assert chosen == {"a", "b"}
