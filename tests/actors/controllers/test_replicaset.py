"""The ReplicaSet controller against a real API server on a real raftstore member."""

from __future__ import annotations

from typing import Any

import trio

from actors.client import ApiClient
from actors.controllers import replicaset
from actors.controllers.podcontrol import controller_of
from tests.actors.controllers.conftest import (
    Harness,
    events_for,
    make,
    pod,
    pod_template,
    set_pod_ready,
    wait_until,
)


def replica_set(name: str, ns: str, replicas: int, *, min_ready: int = 0, **labels: str) -> Any:
    labels = labels or {"app": name}
    rs = make("ReplicaSet", name, ns)
    rs.spec.replicas = replicas
    rs.spec.min_ready_seconds = min_ready
    rs.spec.selector.match_labels.update(labels)
    pod_template(rs.spec.template, **labels, tier="web")
    return rs


async def owned_pods(api: ApiClient, ns: str, rs: Any, *, active: bool = True) -> list[Any]:
    listed = await api.list("Pod", namespace=ns)
    out = []
    for p in listed.items:
        ref = controller_of(p)
        if ref is None or ref.uid != rs.metadata.uid:
            continue
        if active and p.metadata.HasField("deletion_timestamp"):
            continue
        out.append(p)
    return out


async def test_creates_pods_owned_and_reports_status(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(replicaset.new_controller)
    rs = await api.create(replica_set("web", ns, 3))
    pods = await wait_until(lambda: _exactly(api, ns, rs, 3))
    for p in pods:
        assert p.metadata.name.startswith("web-")
        ref = controller_of(p)
        assert ref is not None
        assert (ref.kind, ref.name, ref.api_version) == ("ReplicaSet", "web", "apps/v1")
        assert ref.block_owner_deletion
        assert p.metadata.labels["tier"] == "web"

    async def status() -> Any:
        got: Any = await api.get("ReplicaSet", "web", namespace=ns)
        s = got.status
        return (s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas)

    await wait_until(lambda: _equals(status(), (3, 3, 0, 0)))
    await set_pod_ready(api, ns, pods[0].metadata.name)
    await set_pod_ready(api, ns, pods[1].metadata.name, ready=False)
    await wait_until(lambda: _equals(status(), (3, 3, 1, 1)))
    got: Any = await api.get("ReplicaSet", "web", namespace=ns)
    assert got.status.observed_generation == got.metadata.generation
    await wait_until(lambda: _count_events(api, ns, "web", "SuccessfulCreate", 3))


async def test_replaces_deleted_pod_and_scales_down_in_kubernetes_order(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(replicaset.new_controller)
    rs = await api.create(replica_set("db", ns, 4))
    pods = await wait_until(lambda: _exactly(api, ns, rs, 4))
    names = sorted(p.metadata.name for p in pods)

    # A deleted pod is replaced by a new one.
    await api.delete("Pod", names[0], namespace=ns)
    replaced = await wait_until(
        lambda: _exactly(api, ns, rs, 4, without=names[0]),
    )
    names = [p.metadata.name for p in replaced]

    # Give each pod a different standing: unassigned, assigned Pending, Running not ready,
    # Running ready. Scaling down removes them in exactly that order.
    unassigned, pending, not_ready, ready = names
    await api.bind(pending, "n1", namespace=ns)
    await set_pod_ready(api, ns, not_ready, ready=False, node="n1")
    await set_pod_ready(api, ns, ready, node="n2")
    expected_survivors = [[pending, not_ready, ready], [not_ready, ready], [ready]]
    for replicas, survivors in zip((3, 2, 1), expected_survivors, strict=True):
        await _scale(api, ns, "db", replicas)
        left = await wait_until(lambda n=replicas: _exactly(api, ns, rs, n))  # type: ignore[misc]
        assert sorted(p.metadata.name for p in left) == sorted(survivors)


async def test_adopts_matching_orphan_and_releases_relabelled_pod(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    orphan = await api.create(pod("orphan", ns, app="cache", tier="web"))
    await harness.start(replicaset.new_controller)
    rs = await api.create(replica_set("cache", ns, 2))
    pods = await wait_until(lambda: _exactly(api, ns, rs, 2))
    assert "orphan" in [p.metadata.name for p in pods]
    adopted: Any = await api.get("Pod", "orphan", namespace=ns)
    ref = controller_of(adopted)
    assert ref is not None and ref.uid == rs.metadata.uid
    assert adopted.metadata.uid == orphan.metadata.uid

    # Relabel the adopted pod: it is released (no owner) and replaced.
    adopted.metadata.labels["app"] = "debug"
    await api.update(adopted)

    async def released() -> bool:
        p: Any = await api.get("Pod", "orphan", namespace=ns)
        return controller_of(p) is None

    await wait_until(released)
    pods = await wait_until(lambda: _exactly(api, ns, rs, 2, without="orphan"))
    assert len(pods) == 2


async def test_expectations_never_create_more_than_replicas(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    """Reconciling the same key again right after a create -- before the informer has
    seen the new pods -- creates nothing more; under the running controller the number
    of pods never exceeds spec.replicas."""
    ctx = harness.context()
    ctrl = replicaset.new_controller(ctx)
    assert isinstance(ctrl, replicaset.ReplicaSetController)
    await harness.nursery.start(ctx.informers.run)
    rs = await api.create(replica_set("burst", ns, 12))
    key = f"{ns}/burst"
    await wait_until(lambda: ctrl.rs_informer.cache.get(key) is not None)
    await ctrl.reconcile_key(key)
    assert ctrl.expectations.pending(key) != (0, 0) or len(ctrl.pod_informer.cache.list(ns)) == 12
    await ctrl.reconcile_key(key)
    assert len(await owned_pods(api, ns, rs)) == 12

    # The same under the controller's workers, polling the API server all along.
    await harness.nursery.start(ctrl.run)
    second = await api.create(replica_set("burst2", ns, 20))
    most = 0
    with trio.move_on_after(3):
        while True:
            n = len(await owned_pods(api, ns, second))
            most = max(most, n)
            assert n <= 20
            if n == 20 and ctrl.expectations.satisfied(f"{ns}/burst2"):
                break
    assert most == 20
    await ctrl.reconcile_key(f"{ns}/burst2")
    assert len(await owned_pods(api, ns, second)) == 20


async def test_available_after_min_ready_seconds(api: ApiClient, ns: str, harness: Harness) -> None:
    await harness.start(replicaset.new_controller)
    rs = await api.create(replica_set("slow", ns, 1, min_ready=1))
    [p] = await wait_until(lambda: _exactly(api, ns, rs, 1))
    await set_pod_ready(api, ns, p.metadata.name)

    async def counts() -> tuple[int, int]:
        got: Any = await api.get("ReplicaSet", "slow", namespace=ns)
        return got.status.ready_replicas, got.status.available_replicas

    assert await wait_until(lambda: _equals(counts(), (1, 0)), timeout=5)
    # No pod event happens after the pod became ready: the controller looks again by itself.
    await wait_until(lambda: _equals(counts(), (1, 1)), timeout=5)


# ------------------------------------------------------------------------- helpers


async def _exactly(
    api: ApiClient, ns: str, rs: Any, n: int, *, without: str = ""
) -> list[Any] | None:
    pods = await owned_pods(api, ns, rs)
    if len(pods) != n or any(p.metadata.name == without for p in pods):
        return None
    return pods


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _count_events(api: ApiClient, ns: str, name: str, reason: str, n: int) -> bool:
    events = await events_for(api, ns, name)
    return [r for _, r, _ in events].count(reason) >= n


async def _scale(api: ApiClient, ns: str, name: str, replicas: int) -> None:
    await api.patch_merge("ReplicaSet", name, {"spec": {"replicas": replicas}}, namespace=ns)
