"""Inter-pod affinity and anti-affinity: required terms as a filter, preferred as a score."""

from __future__ import annotations

from typing import Any

from actors.scheduler import SchedulerCache
from actors.scheduler.plugins import interpod
from actors.scheduler.plugins.interpod import (
    ERR_AFFINITY,
    ERR_ANTI_AFFINITY,
    ERR_EXISTING_ANTI_AFFINITY,
)
from tests.actors.scheduler.objects import cluster, info, node, pod

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def term(topology: str = HOST, selector: dict[str, Any] | None = None, **kw: Any) -> dict:
    out: dict[str, Any] = {"topologyKey": topology, **kw}
    if selector is not None:
        out["labelSelector"] = selector
    return out


def with_affinity(name: str, kind: str, *terms: dict, labels: dict | None = None, **kw: Any) -> Any:
    return pod(
        name,
        labels=labels,
        spec={"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}},
        **kw,
    )


def verdicts(p: Any, cache: SchedulerCache) -> dict[str, tuple[str, ...]]:
    state = interpod.prepare_filter(info(p), cache)
    if state is None:
        return {n.name: () for n in cache.nodes}
    return {n.name: interpod.affinity_filter(state, n) for n in cache.nodes}


WEB = {"matchLabels": {"app": "web"}}
DB = {"matchLabels": {"app": "db"}}


def three_nodes(*pods: Any) -> SchedulerCache:
    return cluster(
        node("n1", labels={ZONE: "a"}),
        node("n2", labels={ZONE: "a"}),
        node("n3", labels={ZONE: "b"}),
        pods=pods,
    )


def test_anti_affinity_keeps_replicas_apart_by_hostname_and_zone() -> None:
    cache = three_nodes(pod("web-1", labels={"app": "web"}, node_name="n1"))
    by_host = with_affinity("web-2", "podAntiAffinity", term(HOST, WEB), labels={"app": "web"})
    assert verdicts(by_host, cache) == {"n1": (ERR_ANTI_AFFINITY,), "n2": (), "n3": ()}
    by_zone = with_affinity("web-2", "podAntiAffinity", term(ZONE, WEB), labels={"app": "web"})
    assert verdicts(by_zone, cache) == {
        "n1": (ERR_ANTI_AFFINITY,),
        "n2": (ERR_ANTI_AFFINITY,),
        "n3": (),
    }


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    loner = with_affinity("loner", "podAntiAffinity", term(HOST, WEB), node_name="n2")
    cache = three_nodes(loner)
    assert verdicts(pod("web", labels={"app": "web"}), cache) == {
        "n1": (),
        "n2": (ERR_EXISTING_ANTI_AFFINITY,),
        "n3": (),
    }
    assert interpod.prepare_filter(info(pod("db", labels={"app": "db"})), cache) is None


def test_affinity_needs_a_matching_pod_in_the_domain() -> None:
    cache = three_nodes(pod("db", labels={"app": "db"}, node_name="n2"))
    cache.add_node(node("bare", hostname_label=False))  # no topology labels at all
    same_host = with_affinity("app", "podAffinity", term(HOST, DB))
    assert verdicts(same_host, cache) == {
        "bare": (ERR_AFFINITY,),
        "n1": (ERR_AFFINITY,),
        "n2": (),
        "n3": (ERR_AFFINITY,),
    }
    same_zone = with_affinity("app", "podAffinity", term(ZONE, DB))
    assert verdicts(same_zone, cache) == {
        "bare": (ERR_AFFINITY,),
        "n1": (),
        "n2": (),
        "n3": (ERR_AFFINITY,),
    }


def test_first_pod_of_a_self_affine_group_may_go_anywhere_with_the_topology() -> None:
    cache = three_nodes()
    first = with_affinity("cache-1", "podAffinity", term(ZONE, WEB), labels={"app": "web"})
    assert verdicts(first, cache) == {"n1": (), "n2": (), "n3": ()}
    stranger = with_affinity("x", "podAffinity", term(ZONE, WEB), labels={"app": "other"})
    assert set(verdicts(stranger, cache).values()) == {(ERR_AFFINITY,)}


def test_term_namespaces_and_namespace_selector() -> None:
    cache = three_nodes(pod("db", namespace="data", labels={"app": "db"}, node_name="n1"))
    cache.set_namespace("data", {"team": "storage"})
    own_namespace = with_affinity("a", "podAntiAffinity", term(HOST, DB))
    assert verdicts(own_namespace, cache)["n1"] == ()  # db is in another namespace
    listed = with_affinity("a", "podAntiAffinity", term(HOST, DB, namespaces=["data"]))
    assert verdicts(listed, cache)["n1"] == (ERR_ANTI_AFFINITY,)
    selected = with_affinity(
        "a",
        "podAntiAffinity",
        term(HOST, DB, namespaceSelector={"matchLabels": {"team": "storage"}}),
    )
    assert verdicts(selected, cache)["n1"] == (ERR_ANTI_AFFINITY,)
    other_team = with_affinity(
        "a", "podAntiAffinity", term(HOST, DB, namespaceSelector={"matchLabels": {"team": "x"}})
    )
    assert verdicts(other_team, cache)["n1"] == ()
    everywhere = with_affinity("a", "podAntiAffinity", term(HOST, DB, namespaceSelector={}))
    assert verdicts(everywhere, cache)["n1"] == (ERR_ANTI_AFFINITY,)


def test_a_term_without_label_selector_matches_no_pod() -> None:
    cache = three_nodes(pod("db", labels={"app": "db"}, node_name="n1"))
    assert verdicts(with_affinity("a", "podAntiAffinity", term(HOST)), cache)["n1"] == ()


def test_preferred_terms_score_by_weight_per_domain() -> None:
    cache = three_nodes(
        pod("db", labels={"app": "db"}, node_name="n1"),
        pod("web", labels={"app": "web"}, node_name="n3"),
    )
    p = pod(
        "p",
        spec={
            "affinity": {
                "podAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "podAffinityTerm": term(ZONE, DB)}
                    ]
                },
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 20, "podAffinityTerm": term(HOST, WEB)}
                    ]
                },
            }
        },
    )
    weights = interpod.prepare_score(info(p), cache)
    assert weights is not None
    assert [interpod.affinity_score(weights, n) for n in cache.nodes] == [50, 50, -20]
    assert interpod.prepare_score(info(pod("plain")), cache) is None
