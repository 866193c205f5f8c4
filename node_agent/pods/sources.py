"""Where pod building blocks get ConfigMaps and Secrets: a small seam the caller provides.

The node agent answers from its informer caches (or the API server); tests and the sim
use :class:`StaticSources`. A source returns None for an object that does not exist;
any other failure (the API server is unreachable) is raised and ends the attempt, which
the agent retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from proto.k8s import core_pb2

__all__ = ["ObjectSource", "StaticSources"]


class ObjectSource(Protocol):
    async def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None: ...

    async def secret(self, namespace: str, name: str) -> core_pb2.Secret | None: ...


class StaticSources:
    """An :class:`ObjectSource` over objects held in memory; :meth:`put`/:meth:`delete` change them."""

    def __init__(self, objects: Iterable[core_pb2.ConfigMap | core_pb2.Secret] = ()) -> None:
        self._config_maps: dict[tuple[str, str], core_pb2.ConfigMap] = {}
        self._secrets: dict[tuple[str, str], core_pb2.Secret] = {}
        for obj in objects:
            self.put(obj)

    def put(self, obj: core_pb2.ConfigMap | core_pb2.Secret) -> None:
        key = (obj.metadata.namespace or "default", obj.metadata.name)
        if isinstance(obj, core_pb2.ConfigMap):
            self._config_maps[key] = obj
        else:
            self._secrets[key] = obj

    def delete(self, kind: str, namespace: str, name: str) -> None:
        if kind == "ConfigMap":
            self._config_maps.pop((namespace, name), None)
        elif kind == "Secret":
            self._secrets.pop((namespace, name), None)
        else:
            raise ValueError(f"kind must be ConfigMap or Secret, not {kind!r}")

    async def config_map(self, namespace: str, name: str) -> core_pb2.ConfigMap | None:
        return self._config_maps.get((namespace, name))

    async def secret(self, namespace: str, name: str) -> core_pb2.Secret | None:
        return self._secrets.get((namespace, name))
