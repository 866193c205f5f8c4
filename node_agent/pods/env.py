"""A container's environment, built as the kubelet builds it.

Order and precedence (later wins), as in the kubelet's ``makeEnvironmentVariables``:

1. the image's env (``PATH`` ...) and ``HOSTNAME`` (the pod's hostname) -- set by the
   runtime in Kubernetes, so not visible to ``$(VAR)`` expansion;
2. ``POD_IP`` -- always set here (a Raftsman convention: every pod has its own IP);
3. service links (``service_env``, computed by the caller);
4. ``envFrom``: every key of each ConfigMap / Secret, with ``prefix``, in list order; keys
   that are not valid variable names are skipped with a warning (the kubelet's
   ``InvalidEnvironmentVariableNames`` event);
5. ``env`` in order: ``value`` (with ``$(VAR)`` references expanded against what is
   defined so far, see :mod:`node_agent.pods.expand`) or ``valueFrom``:
   ``configMapKeyRef`` / ``secretKeyRef`` (``optional`` honoured), ``fieldRef``
   (``metadata.name``, ``metadata.namespace``, ``metadata.uid``,
   ``metadata.labels['k']``, ``metadata.annotations['k']``, ``metadata.labels``,
   ``metadata.annotations``, ``spec.nodeName``, ``spec.serviceAccountName``,
   ``status.podIP``, ``status.podIPs``, ``status.hostIP``, ``status.hostIPs``) or
   ``resourceFieldRef`` (``limits.cpu|memory|ephemeral-storage``, ``requests.*``; a
   missing limit is the node's allocatable amount; the value divided by ``divisor`` and
   rounded up).

A missing ConfigMap, Secret or key that is not optional raises
:class:`~node_agent.pods.errors.ConfigError` with the kubelet's message --
``configmap "game-demo" not found``, ``couldn't find key player_initial_lives in
ConfigMap default/game-demo`` -- which the agent reports as ``CreateContainerConfigError``
and retries until the object appears.
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from actors.apiserver.quantity import QuantityError, parse_quantity
from node_agent.pods.errors import ConfigError
from node_agent.pods.expand import expand, mapping_for
from node_agent.pods.sources import ObjectSource
from proto.k8s import core_pb2

__all__ = ["ContainerEnv", "container_env", "is_env_var_name"]


@dataclass(frozen=True)
class ContainerEnv:
    """The result: ``variables`` (what ``$(VAR)`` in command/args sees) and the full ``environ``."""

    variables: Mapping[str, str]
    image_env: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def environ(self) -> dict[str, str]:
        """The environment the container's process gets."""
        return {**self.image_env, **self.variables}


def is_env_var_name(name: str) -> bool:
    """Kubernetes' relaxed rule: non-empty printable ASCII without ``=``."""
    return bool(name) and all(32 <= ord(c) <= 126 for c in name) and "=" not in name


class _Objects:
    """ConfigMaps and Secrets fetched once per build."""

    def __init__(self, sources: ObjectSource, namespace: str) -> None:
        self.sources = sources
        self.namespace = namespace
        self._config_maps: dict[str, core_pb2.ConfigMap | None] = {}
        self._secrets: dict[str, core_pb2.Secret | None] = {}

    async def config_map(self, name: str, optional: bool) -> core_pb2.ConfigMap | None:
        if name not in self._config_maps:
            self._config_maps[name] = await self.sources.config_map(self.namespace, name)
        found = self._config_maps[name]
        if found is None and not optional:
            raise ConfigError(f'configmap "{name}" not found')
        return found

    async def secret(self, name: str, optional: bool) -> core_pb2.Secret | None:
        if name not in self._secrets:
            self._secrets[name] = await self.sources.secret(self.namespace, name)
        found = self._secrets[name]
        if found is None and not optional:
            raise ConfigError(f'secret "{name}" not found')
        return found


async def container_env(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    *,
    sources: ObjectSource,
    pod_ip: str,
    host_ip: str,
    pod_ips: Sequence[str] = (),
    host_ips: Sequence[str] = (),
    image_env: Mapping[str, str] | None = None,
    service_env: Mapping[str, str] | None = None,
    node_allocatable: Mapping[str, str] | None = None,
) -> ContainerEnv:
    """The environment of ``container`` in ``pod``; see the module docstring for the rules."""
    namespace = pod.metadata.namespace or "default"
    objects = _Objects(sources, namespace)
    base = {"POD_IP": pod_ip}
    services = dict(service_env or {})
    env: dict[str, str] = {}
    warnings: list[str] = []

    for source in container.env_from:
        if source.HasField("config_map_ref"):
            ref = source.config_map_ref
            config_map = await objects.config_map(ref.name, ref.optional)
            data: Mapping[str, str] = {} if config_map is None else config_map.data
            kind, name = "configMap", ref.name
        elif source.HasField("secret_ref"):
            sref = source.secret_ref
            secret = await objects.secret(sref.name, sref.optional)
            data = (
                {}
                if secret is None
                else {k: v.decode(errors="replace") for k, v in secret.data.items()}
            )
            kind, name = "secret", sref.name
        else:
            continue
        invalid = []
        for key, value in data.items():
            full = source.prefix + key
            if not is_env_var_name(full):
                invalid.append(full)
                continue
            env[full] = value
        if invalid:
            warnings.append(
                f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {kind} {namespace}/{name} "
                "were skipped since they are considered invalid environment variable names."
            )

    lookup = mapping_for(env, services, base)
    for var in container.env:
        if var.value or not var.HasField("value_from"):
            value = expand(var.value, lookup)
        else:
            resolved = await _value_from(
                var,
                pod,
                container,
                objects,
                pod_ip=pod_ip,
                host_ip=host_ip,
                pod_ips=pod_ips,
                host_ips=host_ips,
                node_allocatable=node_allocatable or {},
            )
            if resolved is None:
                continue  # optional and missing
            value = resolved
        services.pop(var.name, None)
        env[var.name] = value

    hostname = (pod.spec.hostname or pod.metadata.name)[:63]
    return ContainerEnv(
        variables={**base, **services, **env},
        image_env={**(image_env or {}), "HOSTNAME": hostname},
        warnings=tuple(warnings),
    )


async def _value_from(
    var: core_pb2.EnvVar,
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    objects: _Objects,
    *,
    pod_ip: str,
    host_ip: str,
    pod_ips: Sequence[str],
    host_ips: Sequence[str],
    node_allocatable: Mapping[str, str],
) -> str | None:
    source = var.value_from
    namespace = objects.namespace
    if source.HasField("config_map_key_ref"):
        ref = source.config_map_key_ref
        config_map = await objects.config_map(ref.name, ref.optional)
        if config_map is None:
            return None
        if ref.key not in config_map.data:
            if ref.optional:
                return None
            raise ConfigError(f"couldn't find key {ref.key} in ConfigMap {namespace}/{ref.name}")
        return config_map.data[ref.key]
    if source.HasField("secret_key_ref"):
        sref = source.secret_key_ref
        secret = await objects.secret(sref.name, sref.optional)
        if secret is None:
            return None
        if sref.key not in secret.data:
            if sref.optional:
                return None
            raise ConfigError(f"couldn't find key {sref.key} in Secret {namespace}/{sref.name}")
        return secret.data[sref.key].decode(errors="replace")
    if source.HasField("field_ref"):
        return field_value(
            pod,
            source.field_ref,
            pod_ip=pod_ip,
            host_ip=host_ip,
            pod_ips=pod_ips or [pod_ip],
            host_ips=host_ips or [host_ip],
        )
    if source.HasField("resource_field_ref"):
        return resource_value(pod, container, source.resource_field_ref, node_allocatable)
    raise ConfigError(f"env var {var.name!r}: valueFrom names no source")


_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


def _format_map(values: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={json.dumps(values[k], ensure_ascii=False)}" for k in sorted(values))


def field_value(
    pod: core_pb2.Pod,
    selector: core_pb2.ObjectFieldSelector,
    *,
    pod_ip: str,
    host_ip: str,
    pod_ips: Sequence[str],
    host_ips: Sequence[str],
) -> str:
    """The downward API value of ``selector.field_path`` for ``pod``."""
    if selector.api_version not in ("", "v1"):
        raise ConfigError(f"unsupported pod version: {selector.api_version}")
    path = selector.field_path
    match = _SUBSCRIPT.match(path)
    if match is not None:
        values = pod.metadata.labels if match[1] == "metadata.labels" else pod.metadata.annotations
        return values.get(match[2], "")
    simple = {
        "metadata.name": pod.metadata.name,
        "metadata.namespace": pod.metadata.namespace or "default",
        "metadata.uid": pod.metadata.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.podIP": pod_ip,
        "status.podIPs": ",".join(pod_ips),
        "status.hostIP": host_ip,
        "status.hostIPs": ",".join(host_ips),
    }
    if path in simple:
        return simple[path]
    if path == "metadata.labels":
        return _format_map(pod.metadata.labels)
    if path == "metadata.annotations":
        return _format_map(pod.metadata.annotations)
    raise ConfigError(f"unsupported fieldPath: {path}")


_RESOURCES = {
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
}


def resource_value(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    selector: core_pb2.ResourceFieldSelector,
    node_allocatable: Mapping[str, str],
) -> str:
    """The downward API value of a ``resourceFieldRef`` (rounded up to whole divisors)."""
    if selector.container_name and selector.container_name != container.name:
        target = next(
            (
                c
                for c in [*pod.spec.containers, *pod.spec.init_containers]
                if c.name == selector.container_name
            ),
            None,
        )
        if target is None:
            raise ConfigError(f"container {selector.container_name} not found in the pod")
        container = target
    if selector.resource not in _RESOURCES:
        raise ConfigError(f"unsupported container resource : {selector.resource}")
    kind, _, resource = selector.resource.partition(".")
    amounts = container.resources.limits if kind == "limits" else container.resources.requests
    text = amounts.get(resource)
    if text is None and kind == "limits":
        text = node_allocatable.get(resource)
        if text is None:
            raise ConfigError(
                f"{selector.resource} is not set for container {container.name} and the "
                f"node's allocatable {resource} is unknown"
            )
    try:
        amount = parse_quantity(text or "0")
        divisor = parse_quantity(selector.divisor or "1")
    except QuantityError as exc:
        raise ConfigError(f"resourceFieldRef {selector.resource}: {exc}") from None
    if divisor <= 0:
        raise ConfigError(f"resourceFieldRef {selector.resource}: divisor must be positive")
    if resource == "cpu":
        # Both in whole millicores first (rounded up), as Kubernetes' MilliValue() does.
        amount = (amount * 1000).to_integral_value(rounding=decimal.ROUND_CEILING)
        divisor = (divisor * 1000).to_integral_value(rounding=decimal.ROUND_CEILING)
    else:
        amount = amount.to_integral_value(rounding=decimal.ROUND_CEILING)
        divisor = divisor.to_integral_value(rounding=decimal.ROUND_CEILING)
    return str(
        int((Decimal(amount) / Decimal(divisor)).to_integral_value(rounding=decimal.ROUND_CEILING))
    )
