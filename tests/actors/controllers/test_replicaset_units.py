"""Pure parts of the ReplicaSet controller and its pod helpers: scale-down ranking,
slow-start batches, expectations (on trio's fake clock), status arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.lowlevel

from actors.controllers import podcontrol
from actors.controllers.replicaset import compute_status
from tests.actors.controllers.conftest import make, pod, pod_template

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def a_pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Pending",
    ready_for: float | None = None,
    restarts: int = 0,
    age: float = 100.0,
    **labels: str,
) -> Any:
    p = pod(name, "ns", **labels)
    p.spec.node_name = node
    p.status.phase = phase
    p.metadata.creation_timestamp.FromDatetime(NOW - timedelta(seconds=age))
    if ready_for is not None:
        c = p.status.conditions.add(type="Ready", status="True")
        c.last_transition_time.FromDatetime(NOW - timedelta(seconds=ready_for))
    p.status.container_statuses.add(name="main", restart_count=restarts)
    return p


def test_deletion_order_follows_kubernetes_preferences() -> None:
    pods = [
        a_pod("ready-old", node="n1", phase="Running", ready_for=500),
        a_pod("ready-young", node="n2", phase="Running", ready_for=5),
        a_pod("running-not-ready", node="n3", phase="Running"),
        a_pod("unknown", node="n4", phase="Unknown"),
        a_pod("pending-assigned", node="n5"),
        a_pod("unassigned", phase="Pending"),
    ]
    for _ in range(5):
        random.shuffle(pods)
        order = [p.metadata.name for p in podcontrol.deletion_order(pods, now=NOW)]
        assert order == [
            "unassigned",
            "pending-assigned",
            "unknown",
            "running-not-ready",
            "ready-young",
            "ready-old",
        ]


def test_deletion_order_ties_doubled_up_then_restarts_then_newest() -> None:
    pods = [
        a_pod("alone", node="n1", phase="Running", ready_for=60),
        a_pod("doubled-a", node="n2", phase="Running", ready_for=60, age=10),
        a_pod("doubled-b", node="n2", phase="Running", ready_for=60, age=20),
    ]
    order = [p.metadata.name for p in podcontrol.deletion_order(pods, now=NOW)]
    assert order == ["doubled-a", "doubled-b", "alone"]  # doubled-up first, newer first
    pods = [
        a_pod("calm", node="n1", phase="Running", ready_for=60, age=10),
        a_pod("crashy", node="n2", phase="Running", ready_for=60, restarts=4, age=50),
    ]
    order = [p.metadata.name for p in podcontrol.deletion_order(pods, now=NOW)]
    assert order == ["crashy", "calm"]


def test_availability_needs_ready_for_min_ready_seconds() -> None:
    young = a_pod("young", phase="Running", ready_for=3)
    assert podcontrol.is_pod_ready(young)
    assert podcontrol.is_pod_available(young, 0, NOW)
    assert not podcontrol.is_pod_available(young, 10, NOW)
    assert podcontrol.available_in(young, 10, NOW) == pytest.approx(7)
    not_ready = a_pod("nr", phase="Running")
    assert podcontrol.available_in(not_ready, 0, NOW) == float("inf")
    gone = a_pod("gone", phase="Running", ready_for=60)
    assert podcontrol.is_pod_active(gone)
    gone.metadata.deletion_timestamp.FromDatetime(NOW)
    assert not podcontrol.is_pod_active(gone)
    assert not podcontrol.is_pod_active(a_pod("done", phase="Succeeded"))


async def test_slow_start_doubles_batches_and_stops_on_first_failing_batch() -> None:
    started: list[int] = []

    async def fn(i: int) -> None:
        started.append(i)
        await trio.lowlevel.checkpoint()
        if i == 5:
            raise RuntimeError("quota exceeded")

    successes, errors = await podcontrol.slow_start_batch(20, fn)
    # Batches 1, 2, 4 succeed (7 calls, but i=5 is in the third batch: 0 | 1,2 | 3..6).
    assert sorted(started) == list(range(7))
    assert (successes, [str(e) for e in errors]) == (6, ["quota exceeded"])

    calls: list[int] = []

    async def ok(i: int) -> None:
        calls.append(i)

    assert await podcontrol.slow_start_batch(10, ok) == (10, [])
    assert sorted(calls) == list(range(10))
    assert await podcontrol.slow_start_batch(0, ok) == (0, [])


async def test_expectations_wait_for_adds_and_deletes_or_time_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exp = podcontrol.Expectations(timeout=300)
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.pending("ns/rs") == (1, 0)
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")  # an extra add never goes negative
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")  # the same pod counts once
    assert exp.pending("ns/rs") == (0, 1)
    assert not exp.satisfied("ns/rs")
    await trio.sleep(299)
    assert not exp.satisfied("ns/rs")
    await trio.sleep(2)
    assert exp.satisfied("ns/rs")  # a lost watch event cannot block the owner forever
    exp.forget("ns/rs")
    assert exp.pending("ns/rs") == (0, 0)


def test_pod_from_template_is_owned_and_named_after_owner() -> None:
    rs = make("ReplicaSet", "web-5d9c", "prod")
    rs.metadata.uid = "u-1"
    pod_template(rs.spec.template, image="nginx:1", app="web")
    rs.spec.template.metadata.annotations["a"] = "b"
    p = podcontrol.pod_from_template(rs.spec.template, rs)
    assert (p.metadata.namespace, p.metadata.generate_name, p.metadata.name) == (
        "prod",
        "web-5d9c-",
        "",
    )
    assert dict(p.metadata.labels) == {"app": "web"}
    assert dict(p.metadata.annotations) == {"a": "b"}
    assert p.spec.containers[0].image == "nginx:1"
    ref = podcontrol.controller_of(p)
    assert ref is not None
    assert (ref.kind, ref.uid, ref.controller, ref.block_owner_deletion) == (
        "ReplicaSet",
        "u-1",
        True,
        True,
    )
    patch = podcontrol.owner_reference_patch(p, p.metadata.owner_references)
    assert patch["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True


def test_status_counts_labels_readiness_availability_and_failure() -> None:
    rs = make("ReplicaSet", "web", "ns")
    rs.metadata.generation = 7
    rs.spec.min_ready_seconds = 10
    pod_template(rs.spec.template, app="web", tier="front")
    pods = [
        a_pod("a", phase="Running", ready_for=60, app="web", tier="front"),
        a_pod("b", phase="Running", ready_for=2, app="web", tier="front"),
        a_pod("c", phase="Running", app="web"),
    ]
    s = compute_status(rs, pods, now=NOW)
    got = (s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas)
    assert got == (3, 2, 2, 1)
    assert s.observed_generation == 7
    assert list(s.conditions) == []
    failed = compute_status(rs, pods, now=NOW, failure=("FailedCreate", "quota"))
    [cond] = failed.conditions
    assert (cond.type, cond.status, cond.reason, cond.message) == (
        "ReplicaFailure",
        "True",
        "FailedCreate",
        "quota",
    )
    rs.status.CopyFrom(failed)
    assert list(compute_status(rs, pods, now=NOW).conditions) == []
