"""The scheduler cache: assumed pods count until confirmed, forgotten or expired; never twice."""

from __future__ import annotations

import pytest

from actors.scheduler import SchedulerCache
from tests.actors.scheduler.objects import cluster, info, node, pod


def used_cpu(cache: SchedulerCache) -> dict[str, int]:
    return {n.name: n.requested.milli_cpu for n in cache.nodes}


def test_assumed_pod_counts_until_the_watch_confirms_it_once() -> None:
    cache = cluster(node("a"), node("b"))
    cache.assume(info(pod("p", cpu="1")), "a")
    assert used_cpu(cache) == {"a": 1000, "b": 0}
    assert cache.is_assumed("default/p")
    cache.add_pod(pod("p", cpu="1", node_name="a"))  # the bind comes back through the watch
    assert used_cpu(cache) == {"a": 1000, "b": 0}
    assert not cache.is_assumed("default/p")
    assert len(cache.node("a").pods) == 1  # type: ignore[union-attr]


def test_confirmation_on_another_node_moves_the_pod() -> None:
    cache = cluster(node("a"), node("b"))
    cache.assume(info(pod("p", cpu="1")), "a")
    cache.update_pod(pod("p", cpu="1", node_name="b"))
    assert used_cpu(cache) == {"a": 0, "b": 1000}


def test_forget_undoes_an_assumption_but_not_a_binding() -> None:
    cache = cluster(node("a"))
    cache.assume(info(pod("p", cpu="1")), "a")
    cache.forget("default/p")
    assert used_cpu(cache) == {"a": 0}
    cache.add_pod(pod("q", cpu="1", node_name="a"))
    cache.forget("default/q")
    assert used_cpu(cache) == {"a": 1000}


def test_assumed_pods_expire_only_after_binding_finished_plus_ttl() -> None:
    cache = SchedulerCache(assumed_ttl=30)
    cache.add_node(node("a"))
    cache.assume(info(pod("p", cpu="1")), "a")
    assert cache.cleanup_expired(now=1e9) == []  # bind still in flight: never expires
    cache.finish_binding("default/p", now=100.0)
    assert cache.cleanup_expired(now=129.9) == []
    assert cache.cleanup_expired(now=130.0) == ["default/p"]
    assert used_cpu(cache) == {"a": 0}
    assert cache.expired == 1


def test_confirmed_pods_never_expire() -> None:
    cache = cluster(node("a"))
    cache.assume(info(pod("p", cpu="1")), "a")
    cache.finish_binding("default/p", now=0.0)
    cache.add_pod(pod("p", cpu="1", node_name="a"))
    assert cache.cleanup_expired(now=1e9) == []
    assert used_cpu(cache) == {"a": 1000}


def test_deleted_and_finished_pods_free_their_resources() -> None:
    cache = cluster(
        node("a"), pods=(pod("p", cpu="1", node_name="a"), pod("q", cpu="2", node_name="a"))
    )
    assert used_cpu(cache) == {"a": 3000}
    cache.update_pod(pod("p", cpu="1", node_name="a", phase="Succeeded"))
    assert used_cpu(cache) == {"a": 2000}
    cache.remove_pod("default/q")
    assert used_cpu(cache) == {"a": 0}
    cache.assume(info(pod("r", cpu="1")), "a")
    cache.remove_pod("default/r")  # deleted while binding
    assert used_cpu(cache) == {"a": 0}


def test_a_pod_cannot_be_assumed_twice() -> None:
    cache = cluster(node("a"), node("b"))
    cache.assume(info(pod("p")), "a")
    with pytest.raises(ValueError, match="already placed on a"):
        cache.assume(info(pod("p")), "b")


def test_pods_on_an_unknown_node_count_there_once_it_appears() -> None:
    cache = cluster(pods=(pod("p", cpu="1", node_name="late"),))
    assert cache.nodes == []
    cache.add_node(node("late"))
    assert used_cpu(cache) == {"late": 1000}
    cache.remove_node("late")
    assert cache.nodes == []
    assert cache.node_of("default/p") == "late"


def test_bad_allocatable_counts_as_nothing() -> None:
    cache = cluster(node("a", allocatable={"cpu": "lots", "pods": "10"}))
    info_a = cache.node("a")
    assert info_a is not None and info_a.allowed_pods == 0
    assert "resource 'cpu'" in info_a.allocatable_error
