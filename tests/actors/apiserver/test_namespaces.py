"""Namespace rules: system namespaces, missing and terminating namespaces."""

from __future__ import annotations

import pytest

from proto import rpc
from tests.actors.apiserver.conftest import make


async def test_system_namespaces_exist(api):
    items, _ = await api.list("namespaces")
    names = {o.metadata.name for o in items}
    assert {"default", "kube-system", "kube-node-lease"} <= names
    default = await api.get("ns", "default")
    assert default.status.phase == "Active"
    assert default.metadata.labels["kubernetes.io/metadata.name"] == "default"


async def test_system_namespaces_may_not_be_deleted(api):
    for name in ("default", "kube-system", "kube-node-lease"):
        with pytest.raises(rpc.FailedPrecondition, match="may not be deleted"):
            await api.delete("namespaces", name)


async def test_objects_in_a_missing_namespace_are_refused(api, unique):
    with pytest.raises(rpc.NotFound, match=f'namespaces "{unique}" not found'):
        await api.create(make("ConfigMap", "c", unique))


async def test_objects_default_to_the_default_namespace(api, unique):
    created = await api.create(make("ConfigMap", unique))
    assert created.metadata.namespace == "default"
    await api.delete("cm", unique)


async def test_a_terminating_namespace_refuses_new_objects(api, unique):
    ns = make("Namespace", unique)
    ns.metadata.finalizers.append("example.com/cleanup")
    await api.create(ns)
    await api.create(make("ConfigMap", "before", unique))
    kept, pending = await api.delete("namespaces", unique)
    assert pending and kept.status.phase == "Terminating"
    with pytest.raises(rpc.FailedPrecondition, match="because it is being terminated"):
        await api.create(make("ConfigMap", "after", unique))
    await api.patch("namespaces", unique, '{"metadata": {"finalizers": []}}')
    held = await api.get("namespaces", unique)
    assert list(held.spec.finalizers) == ["kubernetes"]
    await api.patch("namespaces", unique, '{"spec": {"finalizers": []}}')
    with pytest.raises(rpc.NotFound):
        await api.get("namespaces", unique)


async def test_the_kubernetes_finalizer_holds_a_deleted_namespace_until_removed(api, unique):
    created = await api.create(make("Namespace", unique))
    assert list(created.spec.finalizers) == ["kubernetes"]
    # Before deletion an update cannot drop it (only the finalize step may).
    await api.patch("namespaces", unique, '{"spec": {"finalizers": []}}')
    assert list((await api.get("namespaces", unique)).spec.finalizers) == ["kubernetes"]
    kept, pending = await api.delete("ns", unique)
    assert pending and kept.status.phase == "Terminating"
    with pytest.raises(rpc.InvalidArgument, match="no new finalizers"):
        await api.patch("namespaces", unique, '{"metadata": {"finalizers": ["example.com/x"]}}')
    await api.patch("namespaces", unique, '{"spec": {"finalizers": []}}')
    with pytest.raises(rpc.NotFound):
        await api.get("namespaces", unique)
