"""Pure rollout arithmetic of the Deployment controller: fenceposts, one rolling step,
proportional scaling, template hashes, conditions. Expected numbers are Kubernetes'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.controllers.deployment import conditions as cond
from actors.controllers.deployment import rollout
from actors.controllers.deployment.hashing import compute_hash, fnv32a, safe_encode
from actors.controllers.deployment.sync import equal_ignore_hash
from tests.actors.controllers.conftest import make, pod_template

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ios(value: int | str) -> Any:
    d = make("Deployment", "x")
    target = d.spec.strategy.rolling_update.max_surge
    if isinstance(value, int):
        target.int_val = value
    else:
        target.str_val = value
    return target


def deploy(
    replicas: int, surge: int | str = "25%", unavailable: int | str = "25%", **kw: Any
) -> Any:
    d = make("Deployment", "web", "ns")
    d.spec.replicas = replicas
    d.spec.strategy.type = kw.pop("strategy", "RollingUpdate")
    if d.spec.strategy.type == "RollingUpdate":
        d.spec.strategy.rolling_update.max_surge.CopyFrom(ios(surge))
        d.spec.strategy.rolling_update.max_unavailable.CopyFrom(ios(unavailable))
    for k, v in kw.items():
        setattr(d.spec, k, v)
    return d


def rs(
    name: str,
    replicas: int,
    available: int | None = None,
    *,
    age: int = 0,
    max_replicas: int | None = None,
) -> Any:
    r = make("ReplicaSet", name, "ns")
    r.spec.replicas = replicas
    r.status.replicas = replicas
    r.status.available_replicas = replicas if available is None else available
    r.metadata.creation_timestamp.FromDatetime(T0 - timedelta(seconds=age))
    if max_replicas is not None:
        r.metadata.annotations[rollout.MAX_REPLICAS_ANNOTATION] = str(max_replicas)
    return r


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up, unavailable down
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 1, (1, 0)),
        ("0%", "25%", 1, (0, 1)),  # both 0 after rounding: unavailable becomes 1
        ("50%", "50%", 5, (3, 2)),
        (0, 1, 5, (0, 1)),
        (2, 0, 5, (2, 0)),
        ("100%", "0%", 3, (3, 0)),
        ("30%", "30%", 0, (0, 1)),
    ],
)
def test_fenceposts_round_like_kubernetes(
    surge: int | str, unavailable: int | str, desired: int, expected: tuple[int, int]
) -> None:
    assert rollout.resolve_fenceposts(ios(surge), ios(unavailable), desired) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert rollout.max_unavailable(deploy(2, 0, 5)) == 2
    assert rollout.max_unavailable(deploy(0, 1, 1)) == 0
    recreate = deploy(4, strategy="Recreate")
    assert (rollout.max_surge(recreate), rollout.max_unavailable(recreate)) == (0, 0)
    with pytest.raises(ValueError, match="'abc'"):
        rollout.scaled_value(ios("abc"), 10, round_up=True)


def test_new_replica_set_grows_within_surge() -> None:
    d = deploy(10, 3, 2)
    old = rs("old", 10)
    new = rs("new", 0)
    assert rollout.plan_new_replica_set(d, [old, new], new) == 3  # 10 + 3 surge - 10
    new = rs("new", 3, 0)
    assert rollout.plan_new_replica_set(d, [old, new], new) is None  # at the ceiling
    assert rollout.plan_new_replica_set(d, [rs("old", 5), new], new) == 8
    assert rollout.plan_new_replica_set(d, [rs("old", 0), rs("new", 12)], rs("new", 12)) == 10
    assert rollout.new_rs_new_replicas(deploy(4, strategy="Recreate"), [old], None) == 4


def test_old_replica_sets_shrink_within_unavailability_unhealthy_first() -> None:
    d = deploy(10, 3, 2)
    new = rs("new", 3, 0)
    # 13 pods wanted, 3 new not available yet: may lose 13 - 8 - 3 = 2, all available.
    assert rollout.plan_reconcile_old(d, [rs("old", 10)], new) == {"old": 8}
    # The old set has 4 unavailable pods: those go first (they cost no availability),
    # then one available one: 6 old + 3 new available = 9, one above minAvailable (8).
    assert rollout.plan_reconcile_old(d, [rs("old", 10, 6)], rs("new", 3, 3)) == {"old": 5}
    assert rollout.plan_cleanup_unhealthy([rs("old", 10, 6)], 5) == {"old": 6}
    # New pods available: old may shrink by available - minAvailable = (10+3) - 8 = 5.
    assert rollout.plan_reconcile_old(d, [rs("old", 10)], rs("new", 3, 3)) == {"old": 5}
    # Oldest old set first.
    plan = rollout.plan_reconcile_old(
        d, [rs("mid", 5, age=10), rs("oldest", 5, age=20)], rs("new", 3, 3)
    )
    assert plan == {"oldest": 0}
    # Stale status: a set just scaled 10 -> 8 whose status still says 10 available
    # counts 8, so the next pass does not scale down twice.
    stale = rs("old", 8, 10)
    assert rollout.plan_reconcile_old(d, [stale], new) == {}


def test_proportional_scaling_spreads_by_size_and_leftover_to_largest() -> None:
    # Mid-rollout 10 replicas (surge 3): old 8 + new 5 = 13. Scale to 20 (surge 5) -> 25.
    d = deploy(20, 3, 2)
    d.spec.strategy.rolling_update.max_surge.CopyFrom(ios("25%"))
    old = rs("old", 8, age=20, max_replicas=13)
    new = rs("new", 5, 0, age=10, max_replicas=13)
    plan = rollout.plan_proportional(d, new, [old])
    assert sum(plan.values()) == 25
    assert plan == {"old": 15, "new": 10}  # 8*25/13 = 15.4 -> 15; 5*25/13 = 9.6 -> 10
    # Scale down to 5 (surge 2) -> 7.
    d = deploy(5, 2, 1)
    plan = rollout.plan_proportional(d, new, [old])
    assert sum(plan.values()) == 7
    assert plan["old"] > plan["new"]


def test_scaling_with_one_active_set_or_saturated() -> None:
    d = deploy(6, 1, 1)
    assert rollout.plan_proportional(d, rs("new", 3), [rs("old", 0, age=5)]) == {"new": 6}
    saturated = rs("new", 6)
    saturated.metadata.annotations[rollout.DESIRED_REPLICAS_ANNOTATION] = "6"
    assert rollout.plan_proportional(d, saturated, [rs("old", 2)]) == {"old": 0}
    latest = rollout.find_active_or_latest(None, [rs("a", 0, age=9), rs("b", 0, age=1)])
    assert latest is not None and latest.metadata.name == "b"


def test_template_hash_is_stable_and_salted_by_collision_count() -> None:
    d = make("Deployment", "web", "ns")
    pod_template(d.spec.template, image="nginx:1", app="web")
    first = compute_hash(d.spec.template)
    again = make("Deployment", "web", "ns")
    pod_template(again.spec.template, image="nginx:1", app="web")
    assert compute_hash(again.spec.template) == first
    assert set(first) <= set("456789bcdf") and 1 <= len(first) <= 10
    again.spec.template.metadata.labels["pod-template-hash"] = first
    assert compute_hash(again.spec.template) == first  # its own label does not count
    assert equal_ignore_hash(again.spec.template, d.spec.template)
    assert compute_hash(d.spec.template, 1) not in (first, compute_hash(d.spec.template, 2))
    d.spec.template.spec.containers[0].image = "nginx:2"
    assert compute_hash(d.spec.template) != first
    # FNV-1a reference vectors and Kubernetes' safe encoding.
    assert fnv32a(b"") == 0x811C9DC5 and fnv32a(b"a") == 0xE40C292C
    # Decimal digits land on "456789bcdf": why Kubernetes hashes look like 7d4b9c8f6d.
    assert safe_encode("0123456789") == "456789bcdf"


def test_conditions_keep_times_unless_status_changes_and_deadline() -> None:
    d = deploy(3, progress_deadline_seconds=60)
    status = d.status
    first = cond.new_condition(cond.PROGRESSING, "True", cond.RS_UPDATED, "m", T0)
    cond.set_condition(status, first)
    later = cond.new_condition(
        cond.PROGRESSING, "True", cond.RS_UPDATED, "m2", T0 + timedelta(seconds=5)
    )
    cond.set_condition(status, later)  # same status and reason: left alone
    assert cond.get_condition(status, cond.PROGRESSING).message == "m"  # type: ignore[union-attr]
    assert not cond.timed_out(d, status, T0 + timedelta(seconds=59))
    assert cond.seconds_to_deadline(d, status, T0 + timedelta(seconds=20)) == pytest.approx(40)
    assert cond.timed_out(d, status, T0 + timedelta(seconds=61))
    failed = cond.new_condition(
        cond.PROGRESSING, "False", cond.TIMED_OUT, "t", T0 + timedelta(seconds=61)
    )
    cond.set_condition(status, failed)
    [only] = status.conditions
    assert (only.status, only.reason) == ("False", cond.TIMED_OUT)
    assert cond.seconds_to_deadline(d, status, T0) is None


def test_progress_and_completion_predicates() -> None:
    d = deploy(3)
    d.metadata.generation = 2
    d.status.replicas, d.status.updated_replicas = 4, 1
    new = type(d.status)(replicas=4, updated_replicas=2, observed_generation=2)
    assert rollout.deployment_progressing(d, new)
    same = type(d.status)(replicas=4, updated_replicas=1, observed_generation=2)
    assert not rollout.deployment_progressing(d, same)
    done = type(d.status)(
        replicas=3, updated_replicas=3, available_replicas=3, observed_generation=2
    )
    assert rollout.deployment_complete(d, done)
    done.observed_generation = 1
    assert not rollout.deployment_complete(d, done)
