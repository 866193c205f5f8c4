"""Create, read, update, patch and delete against a real store and API server."""

from __future__ import annotations

import json

import pytest
import trio

from proto import rpc
from tests.actors.apiserver.conftest import make, pod


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret", "Pod", "Service", "Deployment"])
async def test_namespaced_round_trip(api, ns, kind):
    obj = pod("x", ns) if kind == "Pod" else make(kind, "x", ns)
    if kind == "Service":
        obj.spec.ports.add(port=80)
    if kind == "Deployment":
        obj.spec.selector.match_labels["app"] = "x"
        obj.spec.template.metadata.labels["app"] = "x"
        obj.spec.template.spec.containers.add(name="main", image="busybox")
    created = await api.create(obj)
    m = created.metadata
    assert (m.name, m.namespace, m.generation) == ("x", ns, 1)
    assert m.uid and m.creation_timestamp.seconds > 0 and int(m.resource_version) > 0
    assert created.kind == kind
    got = await api.get(kind, "x", ns)
    assert got == created
    deleted, pending = await api.delete(kind, "x", ns)
    assert not pending and deleted.metadata.uid == m.uid
    assert int(deleted.metadata.resource_version) > int(m.resource_version)
    with pytest.raises(rpc.NotFound, match=f'"{ns}/x" not found'):
        await api.get(kind, "x", ns)


async def test_cluster_scoped_round_trip(api, unique):
    node = make("Node", unique, namespace="ignored")
    created = await api.create(node)
    assert created.metadata.namespace == ""
    assert (await api.get("nodes", unique)).metadata.uid == created.metadata.uid
    assert (await api.get("no", unique, namespace="whatever")).metadata.name == unique
    await api.delete("Node", unique)


async def test_generate_name(api, ns):
    obj = make("ConfigMap", namespace=ns)
    obj.metadata.generate_name = "cfg-"
    a = await api.create(obj)
    b = await api.create(obj)
    assert a.metadata.name.startswith("cfg-") and len(a.metadata.name) == 9
    assert a.metadata.name != b.metadata.name


async def test_errors(api, ns):
    await api.create(make("ConfigMap", "dup", ns))
    with pytest.raises(rpc.AlreadyExists, match=f'configmaps "{ns}/dup" already exists'):
        await api.create(make("ConfigMap", "dup", ns))
    with pytest.raises(rpc.InvalidArgument, match="metadata.name or metadata.generateName"):
        await api.create(make("ConfigMap", "", ns))
    with pytest.raises(rpc.InvalidArgument, match='unknown kind "gizmos"'):
        await api.get("gizmos", "x", ns)
    with pytest.raises(rpc.NotFound):
        await api.delete("ConfigMap", "absent", ns)
    with pytest.raises(rpc.NotFound):
        await api.update(make("ConfigMap", "absent", ns))


async def test_stale_writer_gets_a_conflict(api, ns):
    base = await api.create(make("ConfigMap", "c", ns))
    first = make("ConfigMap", "c", ns)
    first.data["who"] = "first"
    first.metadata.resource_version = base.metadata.resource_version
    second = make("ConfigMap", "c", ns)
    second.data["who"] = "second"
    second.metadata.resource_version = base.metadata.resource_version
    written = await api.update(first)
    with pytest.raises(rpc.Aborted) as caught:
        await api.update(second)
    assert caught.value.message == (
        f'Conflict: operation cannot be fulfilled on configmaps "{ns}/c": the object has '
        f"been modified; please apply your changes to the latest version and try again"
    )
    assert (await api.get("cm", "c", ns)).data["who"] == "first"
    assert int(written.metadata.resource_version) > int(base.metadata.resource_version)


async def test_concurrent_unconditional_updates_lose_nothing(api, ns):
    await api.create(make("ConfigMap", "counter", ns))

    async def add_label(i: int) -> None:
        await api.patch("cm", "counter", json.dumps({"data": {f"k{i}": str(i)}}), ns)

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(add_label, i)
    got = await api.get("cm", "counter", ns)
    assert dict(got.data) == {f"k{i}": str(i) for i in range(10)}


async def test_update_keeps_status_and_server_fields(api, ns):
    created = await api.create(pod("p", ns))
    change = pod("p", ns, tier="web")
    change.status.phase = "Running"  # ignored by Update
    change.metadata.generation = 42  # server-owned
    updated = await api.update(change)
    assert updated.status.phase == "Pending"
    assert updated.metadata.labels["tier"] == "web"
    assert updated.metadata.uid == created.metadata.uid
    assert updated.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert updated.metadata.generation == 1  # metadata change only


async def test_generation_counts_spec_changes_only(api, ns):
    await api.create(pod("p", ns))
    labelled = await api.patch("pods", "p", '{"metadata": {"labels": {"a": "b"}}}', ns)
    assert labelled.metadata.generation == 1
    respec = await api.patch("pods", "p", '{"spec": {"activeDeadlineSeconds": 60}}', ns)
    assert respec.metadata.generation == 2
    status = pod("p", ns)
    status.status.phase = "Running"
    status.spec.active_deadline_seconds = 1  # ignored by UpdateStatus
    after = await api.update_status(status)
    assert after.status.phase == "Running"
    assert after.spec.active_deadline_seconds == 60
    assert after.metadata.generation == 2
    assert int(after.metadata.resource_version) > int(respec.metadata.resource_version)
    patched = await api.patch("pods", "p", '{"status": {"phase": "Succeeded"}}', ns, status=True)
    assert patched.status.phase == "Succeeded" and patched.metadata.generation == 2
    unchanged = await api.patch("pods", "p", '{"status": {"phase": "Failed"}}', ns)
    assert unchanged.status.phase == "Succeeded"


async def test_status_update_with_stale_version_conflicts(api, ns):
    created = await api.create(pod("p", ns))
    await api.patch("pods", "p", '{"metadata": {"labels": {"x": "y"}}}', ns)
    stale = pod("p", ns)
    stale.metadata.resource_version = created.metadata.resource_version
    stale.status.phase = "Running"
    with pytest.raises(rpc.Aborted, match="the object has been modified"):
        await api.update_status(stale)
    with pytest.raises(rpc.InvalidArgument, match="no status subresource"):
        await api.update_status(make("ConfigMap", "c", ns))


async def test_patch(api, ns):
    cm = make("ConfigMap", "c", ns, keep="1", drop="2")
    cm.data.update({"a": "1", "b": "2"})
    created = await api.create(cm)
    patch = {"metadata": {"labels": {"drop": None, "new": "3"}}, "data": {"b": None, "c": "3"}}
    patched = await api.patch("configmaps", "c", json.dumps(patch), ns)
    assert dict(patched.metadata.labels) == {"keep": "1", "new": "3"}
    assert dict(patched.data) == {"a": "1", "c": "3"}
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {}}
    with pytest.raises(rpc.Aborted, match="Conflict"):
        await api.patch("configmaps", "c", json.dumps(stale), ns)
    with pytest.raises(rpc.InvalidArgument, match="not valid JSON"):
        await api.patch("configmaps", "c", "{", ns)
    with pytest.raises(rpc.InvalidArgument, match="invalid"):
        await api.patch("configmaps", "c", '{"data": 1}', ns)


async def test_delete_preconditions_and_policy(api, ns):
    created = await api.create(make("ConfigMap", "c", ns))
    await api.patch("cm", "c", '{"data": {"x": "1"}}', ns)
    with pytest.raises(rpc.Aborted, match="Conflict"):
        await api.delete(
            "cm", "c", ns, preconditions={"resource_version": created.metadata.resource_version}
        )
    with pytest.raises(rpc.Aborted, match="UID in precondition: nope"):
        await api.delete("cm", "c", ns, preconditions={"uid": "nope"})
    with pytest.raises(rpc.InvalidArgument, match="propagationPolicy"):
        await api.delete("cm", "c", ns, propagation_policy="Sideways")
    kept, pending = await api.delete("cm", "c", ns, propagation_policy="Foreground")
    assert pending and list(kept.metadata.finalizers) == ["foregroundDeletion"]
    assert kept.metadata.HasField("deletion_timestamp")


async def test_finalizers_hold_the_object_until_cleared(api, ns):
    cm = make("ConfigMap", "f", ns)
    cm.metadata.finalizers.extend(["example.com/a", "example.com/b"])
    await api.create(cm)
    kept, pending = await api.delete("cm", "f", ns)
    assert pending and kept.metadata.HasField("deletion_timestamp")
    again, pending = await api.delete("cm", "f", ns)
    assert pending and again.metadata.resource_version == kept.metadata.resource_version
    with pytest.raises(rpc.InvalidArgument, match="no new finalizers"):
        await api.patch(
            "cm", "f", '{"metadata": {"finalizers": ["example.com/a", "example.com/c"]}}', ns
        )
    one = await api.patch("cm", "f", '{"metadata": {"finalizers": ["example.com/b"]}}', ns)
    assert list(one.metadata.finalizers) == ["example.com/b"]
    gone = await api.patch("cm", "f", '{"metadata": {"finalizers": null}}', ns)
    assert gone.metadata.HasField("deletion_timestamp")
    with pytest.raises(rpc.NotFound):
        await api.get("cm", "f", ns)


async def test_bound_pod_deletion_is_graceful(api, ns):
    await api.create(pod("unbound", ns))
    _, pending = await api.delete("pods", "unbound", ns)
    assert not pending
    await api.create(pod("bound", ns))
    await api.bind("bound", "node-1", ns)
    kept, pending = await api.delete("pods", "bound", ns)
    assert pending and kept.metadata.deletion_grace_period_seconds == 30
    deleted, pending = await api.delete("pods", "bound", ns, grace_period_seconds=0)
    assert not pending
    with pytest.raises(rpc.NotFound):
        await api.get("pods", "bound", ns)


async def test_bind_sets_node_name_once(api, ns):
    created = await api.create(pod("p", ns))
    bound = await api.bind("p", "node-1", ns, uid=created.metadata.uid)
    assert bound.spec.node_name == "node-1"
    with pytest.raises(rpc.Aborted, match="already assigned to node 'node-1'"):
        await api.bind("p", "node-2", ns)
    with pytest.raises(rpc.Aborted, match="UID in precondition"):
        await api.bind("p", "node-2", ns, uid="other")
    with pytest.raises(rpc.NotFound):
        await api.bind("absent", "node-1", ns)
    assert (await api.get("po", "p", ns)).spec.node_name == "node-1"


async def test_concurrent_binds_have_one_winner(api, ns):
    await api.create(pod("race", ns))
    outcomes: list[str] = []

    async def bind(node: str) -> None:
        try:
            await api.bind("race", node, ns)
            outcomes.append(node)
        except rpc.Aborted:
            outcomes.append("conflict")

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(bind, f"n{i}")
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1 and outcomes.count("conflict") == 4
    assert (await api.get("pods", "race", ns)).spec.node_name == winners[0]


async def test_invalid_objects_are_refused_with_every_problem(api, ns):
    bad = pod("Bad_Name", ns)
    bad.spec.containers[0].image = ""
    with pytest.raises(rpc.InvalidArgument) as caught:
        await api.create(bad)
    assert caught.value.message.startswith('Pod "Bad_Name" is invalid: [')
    assert "metadata.name" in caught.value.message
    assert "spec.containers[0].image" in caught.value.message
    await api.create(pod("good", ns))
    with pytest.raises(rpc.InvalidArgument, match="restartPolicy"):
        await api.patch("pods", "good", '{"spec": {"restartPolicy": "Sometimes"}}', ns)
