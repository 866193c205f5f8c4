"""Node lifecycle decisions with explicit clocks: health, toleration timing, zone rates."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    Disruption,
    HealthTracker,
    TokenBucket,
    ZoneState,
    eviction_delay,
    tolerates,
    zone_state,
)
from actors.controllers.nodelifecycle.disruption import RateLimitedQueue, zone_of
from actors.controllers.nodelifecycle.taints import condition_taints
from proto.k8s import coordination_pb2, core_pb2

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def taint(key: str, *, effect: str = "NoExecute", at: datetime | None = T0, value: str = "") -> Any:
    t = core_pb2.Taint(key=key, value=value, effect=effect)
    if at is not None:
        t.time_added.FromDatetime(at)
    return t


def toleration(
    key: str = "",
    *,
    op: str = "Exists",
    seconds: int | None = None,
    value: str = "",
    effect: str = "",
) -> Any:
    t = core_pb2.Toleration(key=key, operator=op, value=value, effect=effect)
    if seconds is not None:
        t.toleration_seconds = seconds
    return t


def added(t: Any) -> datetime:
    stamp: datetime = t.time_added.ToDatetime(tzinfo=UTC)
    return stamp


# ------------------------------------------------------------------------ tolerations


def test_toleration_matching_follows_kubernetes():
    t = taint("k", value="v")
    assert tolerates(toleration("k"), t)
    assert tolerates(toleration(""), t)  # empty key + Exists tolerates everything
    assert tolerates(toleration("k", op="Equal", value="v"), t)
    assert tolerates(toleration("k", op="", value="v"), t)  # empty operator is Equal
    assert not tolerates(toleration("k", op="Equal", value="w"), t)
    assert not tolerates(toleration("other"), t)
    assert not tolerates(toleration("k", effect="NoSchedule"), t)
    assert tolerates(toleration("k", effect="NoExecute"), t)


def test_an_untolerated_taint_evicts_now():
    assert eviction_delay([], [taint(UNREACHABLE)], now=T0, added=added) == 0.0
    tolerant_of_other = [toleration(NOT_READY, seconds=300)]
    assert eviction_delay(tolerant_of_other, [taint(UNREACHABLE)], now=T0, added=added) == 0.0


def test_toleration_seconds_count_from_the_taints_time_added():
    tols = [toleration(UNREACHABLE, seconds=30)]
    t = [taint(UNREACHABLE, at=T0)]
    assert eviction_delay(tols, t, now=T0, added=added) == 30.0
    assert eviction_delay(tols, t, now=T0 + timedelta(seconds=12), added=added) == 18.0
    assert eviction_delay(tols, t, now=T0 + timedelta(seconds=31), added=added) == 0.0


def test_the_soonest_deadline_over_all_taints_wins_and_untimed_tolerations_never_expire():
    tols = [toleration(UNREACHABLE, seconds=30), toleration("maintenance", seconds=100)]
    both = [taint(UNREACHABLE, at=T0), taint("maintenance", at=T0 - timedelta(seconds=90))]
    assert eviction_delay(tols, both, now=T0, added=added) == 10.0
    forever = [toleration(UNREACHABLE)]
    assert eviction_delay(forever, [taint(UNREACHABLE)], now=T0, added=added) is None
    zero = [toleration(UNREACHABLE, seconds=0)]
    assert eviction_delay(zero, [taint(UNREACHABLE)], now=T0, added=added) == 0.0


def test_only_no_execute_taints_count():
    assert (
        eviction_delay([], [taint(UNREACHABLE, effect="NoSchedule")], now=T0, added=added) is None
    )


def test_taints_without_time_added_use_the_given_first_seen_time():
    seen = T0 - timedelta(seconds=5)
    delay = eviction_delay(
        [toleration(UNREACHABLE, seconds=30)],
        [taint(UNREACHABLE, at=None)],
        now=T0,
        added=lambda _t: seen,
    )
    assert delay == 25.0


def test_condition_taints_mirror_conditions_and_unschedulable():
    node = core_pb2.Node()
    node.status.conditions.add(type="Ready", status="Unknown")
    node.status.conditions.add(type="MemoryPressure", status="True")
    node.status.conditions.add(type="DiskPressure", status="False")
    node.spec.unschedulable = True
    assert {(t.key, t.effect) for t in condition_taints(node)} == {
        (UNREACHABLE, "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    }
    node.status.conditions[0].status = "True"
    node.spec.unschedulable = False
    assert [t.key for t in condition_taints(node)] == ["node.kubernetes.io/memory-pressure"]


# ------------------------------------------------------------------------ health


def node(name: str = "n1", *, heartbeat: int | None = 0, ready: str = "True") -> Any:
    n = core_pb2.Node()
    n.metadata.name = name
    if heartbeat is not None:
        c = n.status.conditions.add(type="Ready", status=ready)
        c.last_heartbeat_time.FromDatetime(T0 + timedelta(seconds=heartbeat))
    return n


def lease(name: str = "n1", *, renewed: int = 0) -> Any:
    lease_ = coordination_pb2.Lease()
    lease_.metadata.name = name
    lease_.spec.renew_time.FromDatetime(T0 + timedelta(seconds=renewed))
    return lease_


def test_a_node_is_stale_after_the_grace_period_without_a_lease_change():
    h = HealthTracker(grace=40, startup_grace=60)
    assert not h.check(node(), lease(), now=100.0).stale  # first sight: full grace
    h.observe_lease(lease(renewed=10), now=120.0)  # renewed: probe time moves
    assert h.check(node(), lease(renewed=10), now=159.0).remaining == pytest.approx(1.0)
    h.observe_lease(lease(renewed=10), now=150.0)  # the same renewTime again: no news
    verdict = h.check(node(), lease(renewed=10), now=160.5)
    assert verdict.stale and verdict.grace == 40


def test_a_new_ready_heartbeat_is_a_sign_of_life_a_status_change_is_not():
    h = HealthTracker(grace=40, startup_grace=60)
    h.check(node(), None, now=0.0)
    h.observe_node(node(heartbeat=0, ready="Unknown"), now=30.0)  # the controller's own write
    assert h.check(node(ready="Unknown"), None, now=41.0).stale
    h.observe_node(node(heartbeat=50), now=42.0)
    assert not h.check(node(heartbeat=50), None, now=81.0).stale


def test_a_node_that_never_posted_ready_gets_the_startup_grace():
    h = HealthTracker(grace=40, startup_grace=60)
    fresh = node(heartbeat=None)
    h.check(fresh, None, now=0.0)
    assert not h.check(fresh, None, now=50.0).stale
    verdict = h.check(fresh, None, now=61.0)
    assert verdict.stale and verdict.grace == 60


def test_events_for_unknown_nodes_do_not_start_their_clock_and_reset_restarts_all():
    h = HealthTracker(grace=10, startup_grace=10)
    h.observe_lease(lease("n1", renewed=5), now=3.0)  # before the first pass: ignored
    assert "n1" not in h
    h.check(node("n1"), lease("n1"), now=5.0)
    h.check(node("n2"), lease("n2"), now=5.0)
    assert h.probe_time("n1") == h.probe_time("n2") == 5.0
    h.reset_all(now=30.0)
    assert not h.check(node("n1"), lease("n1"), now=39.0).stale
    h.forget("n2")
    assert "n2" not in h


# ------------------------------------------------------------------------ zones and rates


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        (["True", "True", "Unknown"], ZoneState.NORMAL),
        (["True", "Unknown", "Unknown"], ZoneState.NORMAL),  # 2 not ready: never partial
        (["True", "Unknown", "Unknown", "False"], ZoneState.PARTIAL),  # 3/4 >= 0.55
        (["True", "True", "Unknown", "Unknown", "Unknown", "True", "True"], ZoneState.NORMAL),
        (["Unknown", None], ZoneState.FULL),
        ([None], ZoneState.FULL),  # no condition yet counts as not ready
    ],
)
def test_zone_state(statuses: list[str | None], state: ZoneState) -> None:
    assert zone_state(statuses, 0.55) is state


def test_zone_key_from_topology_labels():
    assert zone_of({}) == ""
    assert zone_of({"topology.kubernetes.io/zone": "a"}) != zone_of(
        {"topology.kubernetes.io/zone": "b"}
    )


def test_token_bucket_one_burst_then_the_rate():
    bucket = TokenBucket(0.5, now=0.0)
    assert bucket.try_take(0.0)
    assert not bucket.try_take(0.5)
    assert bucket.wait(0.5) == pytest.approx(1.5)
    assert bucket.try_take(2.0)
    stopped = TokenBucket(0.0, now=0.0)
    assert not stopped.try_take(100.0) and stopped.wait(100.0) == math.inf


def test_swapping_a_bucket_keeps_it_drained_if_it_was():
    drained = TokenBucket(1.0, now=0.0)
    assert drained.try_take(0.0)
    assert not drained.swapped(10.0, now=0.01).try_take(0.01)
    full = TokenBucket(1.0, now=0.0)
    assert full.swapped(10.0, now=0.0).try_take(0.0)


def test_queue_takes_in_order_and_drops_nodes_that_recovered():
    queue = RateLimitedQueue(1.0, now=0.0)
    for name in ("a", "b", "c"):
        queue.add(name)
    assert queue.take(0.0, still_needed=lambda n: n != "a") == ["b"]  # a dropped for free
    assert queue.names() == ["c"] and queue.wait(0.0) == pytest.approx(1.0)
    assert queue.take(1.0, still_needed=lambda n: True) == ["c"]
    assert queue.wait(1.0) is None


def disruption(large: int = 50) -> Disruption:
    return Disruption(
        eviction_rate=1.0,
        secondary_rate=0.1,
        unhealthy_threshold=0.55,
        large_cluster_threshold=large,
    )


def rates(d: Disruption) -> dict[str, float]:
    return {zone: q.bucket.rate for zone, q in d.queues.items()}


def test_partial_disruption_slows_large_zones_and_stops_small_ones():
    d = disruption(large=4)
    ok = ["True"] * 5
    change = d.update({"big": ok, "small": ok[:4]}, now=0.0)
    assert not change.entered_full and not change.exited_full
    assert rates(d) == {"big": 1.0, "small": 1.0}
    partial = ["Unknown"] * 3 + ["True"]
    d.update({"big": partial + ["True"], "small": partial}, now=1.0)
    assert d.states == {"big": ZoneState.PARTIAL, "small": ZoneState.PARTIAL}
    assert rates(d) == {"big": 0.1, "small": 0.0}  # small: 4 nodes <= threshold


def test_one_zone_down_while_another_is_healthy_evicts_at_the_normal_rate():
    d = disruption()
    d.update({"a": ["True", "True"], "b": ["True"]}, now=0.0)
    change = d.update({"a": ["True", "True"], "b": ["Unknown"]}, now=1.0)
    assert not change.entered_full
    assert d.states["b"] is ZoneState.FULL and rates(d)["b"] == 1.0


def test_all_zones_down_stops_evictions_until_one_node_returns():
    d = disruption()
    d.update({"a": ["True", "True"], "b": ["True"]}, now=0.0)
    change = d.update({"a": ["Unknown", "Unknown"], "b": ["Unknown"]}, now=1.0)
    assert change.entered_full and d.all_fully_disrupted
    assert rates(d) == {"a": 0.0, "b": 0.0}
    d.mark("n1", "a", now=1.0)
    assert d.queues["a"].take(5.0, still_needed=lambda _n: True) == []
    assert not d.update({"a": ["Unknown", "Unknown"], "b": ["Unknown"]}, now=2.0).entered_full
    change = d.update({"a": ["True", "Unknown"], "b": ["Unknown"]}, now=3.0)
    assert change.exited_full and not d.all_fully_disrupted
    assert rates(d) == {"a": 1.0, "b": 1.0}
    # Coming from a stopped bucket, the first token takes one interval (Kubernetes'
    # SwapLimiter drains the new bucket when the old one had nothing to give).
    assert d.queues["a"].take(3.0, still_needed=lambda _n: True) == []
    assert d.queues["a"].take(4.0, still_needed=lambda _n: True) == ["n1"]


def test_a_controller_that_starts_during_a_full_disruption_does_not_evict():
    d = disruption()
    change = d.update({"": ["Unknown", "Unknown"]}, now=0.0)
    assert change.entered_full and rates(d) == {"": 0.0}


def test_a_node_is_queued_in_one_zone_only():
    d = disruption()
    d.mark("n1", "a", now=0.0)
    d.mark("n1", "b", now=0.0)
    assert "n1" not in d.queues["a"] and "n1" in d.queues["b"]
    d.unmark("n1")
    assert "n1" not in d.queues["b"]
