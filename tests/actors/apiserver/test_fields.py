"""Unknown fields in manifests: warnings by default, errors under Strict; Secrets' stringData."""

from __future__ import annotations

import json

import pytest

from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from tests.actors.apiserver.conftest import make, pack, unpack


def deployment(ns: str, **extra: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
            **extra,
        },
    }


async def test_manifest_json_warns_about_unknown_fields(api, ns):
    doc = deployment(ns, replicaz=3)
    response = await api.stub.Create(pb.CreateRequest(manifest_json=json.dumps(doc)))
    assert list(response.warnings) == ['unknown field "spec.replicaz"']
    created = unpack(response.object)
    assert created.spec.replicas == 2 and created.metadata.uid
    # Update takes a manifest too; Ignore drops the warnings.
    doc["spec"]["replicas"] = 3
    response = await api.stub.Update(
        pb.UpdateRequest(manifest_json=json.dumps(doc), field_validation="Ignore")
    )
    assert list(response.warnings) == [] and unpack(response.object).spec.replicas == 3


async def test_strict_refuses_unknown_fields(api, ns):
    doc = deployment(ns, replicaz=3)
    with pytest.raises(
        rpc.InvalidArgument, match='strict decoding error: unknown field "spec.replicaz"'
    ):
        await api.stub.Create(
            pb.CreateRequest(manifest_json=json.dumps(doc), field_validation="Strict")
        )
    with pytest.raises(rpc.InvalidArgument, match="fieldValidation must be one of"):
        await api.stub.Create(pb.CreateRequest(manifest_json="{}", field_validation="Loose"))
    with pytest.raises(rpc.InvalidArgument, match="both object and manifest_json"):
        await api.stub.Create(
            pb.CreateRequest(object=pack(make("ConfigMap", "c", ns)), manifest_json="{}")
        )
    with pytest.raises(rpc.InvalidArgument, match="cannot decode the manifest"):
        bad = deployment(ns)
        bad["spec"]["replicas"] = "two"
        await api.stub.Create(pb.CreateRequest(manifest_json=json.dumps(bad)))


async def test_patch_warns_or_refuses(api, ns):
    await api.create(make("ConfigMap", "c", ns))
    request = pb.PatchRequest(
        kind="cm", namespace=ns, name="c", merge_patch='{"data": {"a": "1"}, "nonsense": 1}'
    )
    response = await api.stub.Patch(request)
    assert list(response.warnings) == ['unknown field "nonsense"']
    assert dict(unpack(response.object).data) == {"a": "1"}
    request.field_validation = "Strict"
    with pytest.raises(
        rpc.InvalidArgument, match='strict decoding error: unknown field "nonsense"'
    ):
        await api.stub.Patch(request)


async def test_secret_string_data_merged_into_data(api, ns):
    secret = make("Secret", "s", ns)
    secret.data["a"] = b"old"
    secret.data["keep"] = b"k"
    secret.string_data["a"] = "new"
    secret.string_data["b"] = "two"
    created = await api.create(secret)
    assert dict(created.data) == {"a": b"new", "b": b"two", "keep": b"k"}
    assert not created.string_data
    assert not (await api.get("secret", "s", ns)).string_data
    created.string_data["c"] = "three"
    updated = await api.update(created)
    assert dict(updated.data) == {"a": b"new", "b": b"two", "c": b"three", "keep": b"k"}
    assert not updated.string_data
    patched = await api.patch("secret", "s", '{"stringData": {"keep": "changed"}}', ns)
    assert patched.data["keep"] == b"changed" and not patched.string_data
    # Through a manifest: data is base64, stringData plain.
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "m", "namespace": ns},
        "data": {"x": "eA=="},
        "stringData": {"y": "why"},
    }
    response = await api.stub.Create(pb.CreateRequest(manifest_json=json.dumps(doc)))
    assert dict(unpack(response.object).data) == {"x": b"x", "y": b"why"}
