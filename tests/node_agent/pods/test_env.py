"""A container's environment: values, ConfigMaps and Secrets, the downward API, errors."""

from __future__ import annotations

from typing import Any

import pytest

from node_agent.pods.env import ContainerEnv, container_env
from node_agent.pods.errors import ConfigError
from node_agent.pods.sources import StaticSources
from proto.k8s import codec, core_pb2


def pod(container: dict[str, Any], **spec: Any) -> core_pb2.Pod:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "game",
            "namespace": "default",
            "uid": "1234-abcd",
            "labels": {"app": "game", "tier": "front"},
            "annotations": {"owner": "team-a"},
        },
        "spec": {
            "nodeName": "node-1",
            "serviceAccountName": "runner",
            "containers": [container],
            **spec,
        },
    }
    obj = codec.decode(doc).obj
    assert isinstance(obj, core_pb2.Pod)
    return obj


def config_map(name: str, data: dict[str, str], namespace: str = "default") -> core_pb2.ConfigMap:
    obj = codec.decode(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": data,
        }
    ).obj
    assert isinstance(obj, core_pb2.ConfigMap)
    return obj


def secret(name: str, data: dict[str, bytes]) -> core_pb2.Secret:
    obj = core_pb2.Secret()
    obj.metadata.name, obj.metadata.namespace = name, "default"
    for key, value in data.items():
        obj.data[key] = value
    return obj


SOURCES = StaticSources(
    [
        config_map(
            "game-demo",
            {"player_initial_lives": "3", "ui_properties_file_name": "user-interface.properties"},
        ),
        config_map("extra", {"MODE": "fast", "bad=key": "x", "LIVES": "9"}),
        secret("creds", {"username": b"admin", "password": b"s3cret"}),
    ]
)


async def build(container: dict[str, Any], **kwargs: Any) -> ContainerEnv:
    p = pod({"name": "main", "image": "busybox", **container})
    return await container_env(
        p, p.spec.containers[0], sources=SOURCES, pod_ip="127.1.0.5", host_ip="127.0.0.1", **kwargs
    )


async def test_values_and_expansion_in_order() -> None:
    result = await build(
        {
            "env": [
                {"name": "A", "value": "a"},
                {"name": "B", "value": "$(A)-b"},
                {"name": "C", "value": "$(D)-c"},  # D is defined later: stays as written
                {"name": "D", "value": "d"},
                {"name": "E", "value": "$$(A) $(POD_IP)"},
                {"name": "EMPTY"},
            ]
        }
    )
    assert result.variables == {
        "POD_IP": "127.1.0.5",
        "A": "a",
        "B": "a-b",
        "C": "$(D)-c",
        "D": "d",
        "E": "$(A) 127.1.0.5",
        "EMPTY": "",
    }


async def test_pod_ip_is_always_set_and_can_be_overridden() -> None:
    assert (await build({})).variables == {"POD_IP": "127.1.0.5"}
    assert (await build({"env": [{"name": "POD_IP", "value": "mine"}]})).variables[
        "POD_IP"
    ] == "mine"


async def test_config_map_and_secret_keys() -> None:
    result = await build(
        {
            "env": [
                {
                    "name": "LIVES",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "game-demo", "key": "player_initial_lives"}
                    },
                },
                {
                    "name": "USER",
                    "valueFrom": {"secretKeyRef": {"name": "creds", "key": "username"}},
                },
                {
                    "name": "OPTIONAL",
                    "valueFrom": {
                        "configMapKeyRef": {"name": "absent", "key": "x", "optional": True}
                    },
                },
                {
                    "name": "OPTIONAL_KEY",
                    "valueFrom": {
                        "secretKeyRef": {"name": "creds", "key": "nope", "optional": True}
                    },
                },
            ]
        }
    )
    assert result.variables == {"POD_IP": "127.1.0.5", "LIVES": "3", "USER": "admin"}


async def test_env_from_with_prefix_and_precedence() -> None:
    result = await build(
        {
            "envFrom": [
                {"configMapRef": {"name": "extra"}},
                {"prefix": "DB_", "secretRef": {"name": "creds"}},
                {"configMapRef": {"name": "missing", "optional": True}},
            ],
            "env": [{"name": "MODE", "value": "$(MODE)-override"}],
        },
        service_env={"LIVES": "from-service", "WEB_SERVICE_HOST": "10.0.0.1"},
    )
    assert result.variables == {
        "POD_IP": "127.1.0.5",
        "WEB_SERVICE_HOST": "10.0.0.1",
        "LIVES": "9",  # envFrom wins over service links
        "MODE": "fast-override",
        "DB_username": "admin",
        "DB_password": "s3cret",
    }
    assert result.warnings == (
        "Keys [bad=key] from the EnvFrom configMap default/extra were skipped since they are "
        "considered invalid environment variable names.",
    )


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {"envFrom": [{"configMapRef": {"name": "game-demoo"}}]},
            'configmap "game-demoo" not found',
        ),
        ({"envFrom": [{"secretRef": {"name": "nope"}}]}, 'secret "nope" not found'),
        (
            {
                "env": [
                    {
                        "name": "X",
                        "valueFrom": {"configMapKeyRef": {"name": "game-demo", "key": "lives"}},
                    }
                ]
            },
            "couldn't find key lives in ConfigMap default/game-demo",
        ),
        (
            {
                "env": [
                    {"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}
                ]
            },
            "couldn't find key token in Secret default/creds",
        ),
        (
            {
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "other", "key": "k"}}}
                ]
            },
            'configmap "other" not found',
        ),
        (
            {
                "env": [
                    {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}
                ]
            },
            "unsupported fieldPath: spec.restartPolicy",
        ),
    ],
)
async def test_missing_objects_and_keys_are_config_errors(
    container: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        await build(container)
    assert str(info.value) == message
    assert info.value.reason == "CreateContainerConfigError"


async def test_downward_api_fields() -> None:
    paths = {
        "NAME": "metadata.name",
        "NS": "metadata.namespace",
        "UID": "metadata.uid",
        "APP": "metadata.labels['app']",
        "MISSING_LABEL": "metadata.labels['nope']",
        "OWNER": "metadata.annotations['owner']",
        "LABELS": "metadata.labels",
        "NODE": "spec.nodeName",
        "SA": "spec.serviceAccountName",
        "IP": "status.podIP",
        "IPS": "status.podIPs",
        "HOST": "status.hostIP",
    }
    result = await build(
        {
            "env": [
                {"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in paths.items()
            ]
        }
    )
    assert {k: result.variables[k] for k in paths} == {
        "NAME": "game",
        "NS": "default",
        "UID": "1234-abcd",
        "APP": "game",
        "MISSING_LABEL": "",
        "OWNER": "team-a",
        "LABELS": 'app="game"\ntier="front"',
        "NODE": "node-1",
        "SA": "runner",
        "IP": "127.1.0.5",
        "IPS": "127.1.0.5",
        "HOST": "127.0.0.1",
    }


async def test_resource_field_refs_round_up_and_default_to_allocatable() -> None:
    refs = {
        "CPU_LIMIT": {"resource": "limits.cpu"},
        "CPU_LIMIT_MILLI": {"resource": "limits.cpu", "divisor": "1m"},
        "MEM_LIMIT_MI": {"resource": "limits.memory", "divisor": "1Mi"},
        "MEM_REQUEST": {"resource": "requests.memory"},
        "CPU_REQUEST": {"resource": "requests.cpu", "divisor": "1m"},
        "SIDECAR_CPU": {"resource": "limits.cpu", "containerName": "side", "divisor": "1m"},
    }
    main = {
        "name": "main",
        "image": "busybox",
        "resources": {"limits": {"cpu": "250m", "memory": "100M"}, "requests": {"memory": "64Mi"}},
        "env": [{"name": k, "valueFrom": {"resourceFieldRef": v}} for k, v in refs.items()],
    }
    p = pod(main)
    p.spec.containers.add(name="side", image="busybox")
    result = await container_env(
        p,
        p.spec.containers[0],
        sources=SOURCES,
        pod_ip="127.1.0.5",
        host_ip="127.0.0.1",
        node_allocatable={"cpu": "2", "memory": "8Gi"},
    )
    assert {k: result.variables[k] for k in refs} == {
        "CPU_LIMIT": "1",  # 250m rounded up to whole cores
        "CPU_LIMIT_MILLI": "250",
        "MEM_LIMIT_MI": "96",  # 100M / 1Mi = 95.37 -> 96
        "MEM_REQUEST": str(64 * 1024 * 1024),
        "CPU_REQUEST": "0",
        "SIDECAR_CPU": "2000",  # no limit: the node's allocatable cpu
    }


async def test_environ_layers_image_env_and_hostname_underneath() -> None:
    result = await build(
        {"env": [{"name": "PATH", "value": "/custom"}]},
        image_env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    assert result.environ == {
        "PATH": "/custom",
        "LANG": "C.UTF-8",
        "HOSTNAME": "game",
        "POD_IP": "127.1.0.5",
    }
    # Image env is not visible to $(VAR) expansion, as in Kubernetes.
    assert "LANG" not in result.variables
