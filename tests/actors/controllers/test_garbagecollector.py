"""The garbage collector against a real API server on raftstore: background, foreground
and orphan propagation, and owners recreated under the same name."""

from __future__ import annotations

from typing import Any

from actors.client import ApiClient, NotFound
from actors.controllers import garbagecollector
from actors.controllers.podcontrol import controller_ref
from tests.actors.controllers.conftest import Harness, make, pod, pod_template, wait_until


async def replicaset(api: ApiClient, ns: str, name: str = "rs") -> Any:
    rs = make("ReplicaSet", name, ns)
    rs.spec.replicas = 0  # nothing creates pods here: the tests make them by hand
    rs.spec.selector.match_labels["app"] = name
    pod_template(rs.spec.template, app=name)
    return await api.create(rs)


async def owned_pod(api: ApiClient, ns: str, name: str, *owners: Any, node: str = "") -> Any:
    p = pod(name, ns)
    for i, owner in enumerate(owners):
        ref = p.metadata.owner_references.add()
        ref.CopyFrom(controller_ref(owner))
        if i:
            ref.ClearField("controller")
    created = await api.create(p)
    if node:
        created = await api.bind(name, node, namespace=ns)
    return created


async def exists(api: ApiClient, kind: str, name: str, ns: str) -> Any | None:
    try:
        return await api.get(kind, name, namespace=ns)
    except NotFound:
        return None


async def test_background_deletion_collects_dependents(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(garbagecollector.new_controller)
    rs = await replicaset(api, ns)
    other = await replicaset(api, ns, "other")
    for name in ("a", "b"):
        await owned_pod(api, ns, name, rs)
    await owned_pod(api, ns, "shared", rs, other)
    await owned_pod(api, ns, "kept", other)
    await api.create(pod("free", ns))

    await api.delete("ReplicaSet", "rs", namespace=ns)

    async def collected() -> bool:
        return all([await exists(api, "Pod", n, ns) is None for n in ("a", "b")])

    await wait_until(collected)
    # A pod with a surviving owner loses only the dead reference.
    shared = await wait_until(lambda: _with_owners(api, ns, "shared", 1))
    assert [r.name for r in shared.metadata.owner_references] == ["other"]
    assert await exists(api, "Pod", "kept", ns) is not None
    assert await exists(api, "Pod", "free", ns) is not None


async def _with_owners(api: ApiClient, ns: str, name: str, count: int) -> Any | None:
    p = await exists(api, "Pod", name, ns)
    return p if p is not None and len(p.metadata.owner_references) == count else None


async def test_an_owner_recreated_under_the_same_name_does_not_keep_old_dependents(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    old = await replicaset(api, ns)
    await api.delete("ReplicaSet", "rs", namespace=ns)
    new = await replicaset(api, ns)
    assert new.metadata.uid != old.metadata.uid
    await owned_pod(api, ns, "stale", old)
    await owned_pod(api, ns, "current", new)
    await harness.start(garbagecollector.new_controller)
    await wait_until(lambda: _gone(api, "Pod", "stale", ns))
    assert await exists(api, "Pod", "current", ns) is not None


async def _gone(api: ApiClient, kind: str, name: str, ns: str) -> bool:
    return await exists(api, kind, name, ns) is None


async def test_foreground_deletion_waits_for_dependents(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(garbagecollector.new_controller)
    rs = await replicaset(api, ns)
    await owned_pod(api, ns, "quick", rs)
    # Bound to a node: deletion waits for a node agent, so this pod stays Terminating.
    await owned_pod(api, ns, "slow", rs, node="n1")

    deleted = await api.delete("ReplicaSet", "rs", namespace=ns, propagation_policy="Foreground")
    assert deleted.pending

    async def slow_terminating() -> bool:
        p = await exists(api, "Pod", "slow", ns)
        return p is not None and p.metadata.HasField("deletion_timestamp")

    await wait_until(lambda: _gone(api, "Pod", "quick", ns))
    await wait_until(slow_terminating)
    held = await exists(api, "ReplicaSet", "rs", ns)
    assert held is not None and list(held.metadata.finalizers) == ["foregroundDeletion"]

    # What a node agent does once the containers stopped: the pod goes, then the owner.
    await api.delete("Pod", "slow", namespace=ns, grace_period_seconds=0)
    await wait_until(lambda: _gone(api, "ReplicaSet", "rs", ns))


async def test_orphan_deletion_releases_dependents(
    api: ApiClient, ns: str, harness: Harness
) -> None:
    await harness.start(garbagecollector.new_controller)
    rs = await replicaset(api, ns)
    for name in ("a", "b"):
        await owned_pod(api, ns, name, rs)

    await api.delete("ReplicaSet", "rs", namespace=ns, propagation_policy="Orphan")
    await wait_until(lambda: _gone(api, "ReplicaSet", "rs", ns))
    for name in ("a", "b"):
        p = await exists(api, "Pod", name, ns)
        assert p is not None and not p.metadata.owner_references
