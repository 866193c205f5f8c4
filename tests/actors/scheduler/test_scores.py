"""Scores and normalizations: Kubernetes' integer formulas on worked examples."""

from __future__ import annotations

from typing import Any

import pytest

from actors.scheduler.plugins import scores
from tests.actors.scheduler.objects import info, node, node_info, pod


@pytest.mark.parametrize(
    ("existing", "wanted", "expected"),
    [
        ([], ("1", "2Gi"), 75),  # cpu 3/4 free -> 75, memory 6/8 -> 75
        ([("2", "2Gi")], ("1", "2Gi"), (25 + 50) // 2),
        ([], (None, None), (97 + 97) // 2),  # counted as 100m / 200Mi
        ([("4", "8Gi")], ("1", "1Gi"), 0),  # over capacity scores 0, never negative
    ],
)
def test_least_allocated(
    existing: list[tuple[str, str]], wanted: tuple[str | None, str | None], expected: int
) -> None:
    placed = [pod(f"e{i}", cpu=c, memory=m) for i, (c, m) in enumerate(existing)]
    n = node_info(node("n", cpu="4", memory="8Gi"), *placed)
    assert scores.least_allocated(info(pod("p", cpu=wanted[0], memory=wanted[1])), n) == expected


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (("1", "2Gi"), 100),  # 25% cpu, 25% memory: perfectly balanced
        (("1", "4Gi"), 87),  # 25% / 50%: std 0.125
        (("4", "0"), 50),  # 100% / 0%: the worst
    ],
)
def test_balanced_allocation(wanted: tuple[str, str], expected: int) -> None:
    n = node_info(node("n", cpu="4", memory="8Gi"))
    assert (
        scores.balanced_allocation(info(pod("p", cpu=wanted[0], memory=wanted[1])), n) == expected
    )


def preferred(*terms: tuple[int, dict[str, Any]]) -> Any:
    return pod(
        "p",
        spec={
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": w, "preference": {"matchExpressions": [expr]}}
                        for w, expr in terms
                    ]
                }
            }
        },
    )


def test_preferred_node_affinity_adds_weights_then_normalizes_to_the_best() -> None:
    p = info(
        preferred(
            (10, {"key": "zone", "operator": "In", "values": ["a"]}),
            (30, {"key": "disk", "operator": "Exists"}),
        )
    )
    raw = [
        scores.node_affinity_score(p, node_info(node(n, labels=labels)))
        for n, labels in (("a", {"zone": "a"}), ("b", {"disk": "ssd"}), ("c", {}), ("d", {"zone": "a", "disk": "x"}))
    ]  # fmt: skip
    assert raw == [10, 30, 0, 40]
    scores.normalize_max(raw)
    assert raw == [25, 75, 0, 100]


def test_prefer_no_schedule_taints_are_counted_unless_tolerated() -> None:
    soft = [
        {"key": "a", "value": "1", "effect": "PreferNoSchedule"},
        {"key": "b", "value": "2", "effect": "PreferNoSchedule"},
        {"key": "c", "value": "3", "effect": "NoSchedule"},
    ]
    n = node_info(node("n", taints=soft))
    assert scores.taint_toleration_score(info(pod("p")), n) == 2
    tolerant = pod("q", spec={"tolerations": [{"key": "a", "operator": "Exists"}]})
    assert scores.taint_toleration_score(info(tolerant), n) == 1
    only_no_schedule = pod(
        "r", spec={"tolerations": [{"key": "b", "operator": "Exists", "effect": "NoSchedule"}]}
    )
    assert scores.taint_toleration_score(info(only_no_schedule), n) == 2
    raw = [2, 1, 0]
    scores.normalize_reverse(raw)
    assert raw == [0, 50, 100]


def test_spreading_counts_pods_of_the_same_controller() -> None:
    n = node_info(node("n"), pod("a", owner="web"), pod("b", owner="web"), pod("c", owner="db"))
    assert scores.selector_spread(info(pod("new", owner="web")), n) == 2
    assert scores.selector_spread(info(pod("new", owner="api")), n) == 0
    assert scores.selector_spread(info(pod("bare")), n) == 0
    n.remove_pod("default/a")
    assert scores.selector_spread(info(pod("new", owner="web")), n) == 1


@pytest.mark.parametrize(
    ("normalize", "raw", "expected"),
    [
        (scores.normalize_max, [0, 0], [0, 0]),
        (scores.normalize_max, [1, 3], [33, 100]),
        (scores.normalize_reverse, [0, 0], [100, 100]),
        (scores.normalize_reverse, [1, 3], [67, 0]),
        (scores.normalize_min_max, [-5, 0, 5], [0, 50, 100]),
        (scores.normalize_min_max, [4, 4], [0, 0]),
    ],
)
def test_normalizations(normalize: Any, raw: list[int], expected: list[int]) -> None:
    normalize(raw)
    assert raw == expected
