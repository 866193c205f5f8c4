"""Builders of Node and Pod objects for the scheduler tests, from Kubernetes-shaped dicts."""

from __future__ import annotations

from typing import Any

from actors.scheduler import NodeInfo, PodInfo, SchedulerCache
from proto.k8s import codec

READY = {"type": "Ready", "status": "True"}


def decode(doc: dict[str, Any]) -> Any:
    return codec.decode(doc, strict=True).obj


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    conditions: list[dict[str, str]] | None = None,
    allocatable: dict[str, str] | None = None,
    hostname_label: bool = True,
) -> Any:
    base = {"kubernetes.io/hostname": name} if hostname_label else {}
    alloc = {"cpu": cpu, "memory": memory, "pods": pods} if allocatable is None else allocatable
    return decode(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {**base, **(labels or {})},
            },
            "spec": {"unschedulable": unschedulable, "taints": taints or []},
            "status": {
                "allocatable": alloc,
                "capacity": alloc,
                "conditions": [READY] if conditions is None else conditions,
            },
        }
    )


def pod(
    name: str,
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    labels: dict[str, str] | None = None,
    node_name: str = "",
    spec: dict[str, Any] | None = None,
    owner: str = "",
    phase: str = "",
    containers: list[dict[str, Any]] | None = None,
) -> Any:
    requests = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    if containers is None:
        containers = [{"name": "main", "image": "busybox", "resources": {"requests": requests}}]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "labels": labels or {},
    }
    if owner:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": f"rs-{owner}",
             "controller": True}
        ]  # fmt: skip
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": containers, "nodeName": node_name, **(spec or {})},
    }
    if phase:
        doc["status"] = {"phase": phase}
    return decode(doc)


def info(p: Any) -> PodInfo:
    return PodInfo.of(p)


def node_info(n: Any, *pods: Any) -> NodeInfo:
    ni = NodeInfo(n.metadata.name)
    ni.set_node(n)
    for p in pods:
        ni.add_pod(PodInfo.of(p))
    return ni


def cluster(*nodes: Any, pods: tuple[Any, ...] = ()) -> SchedulerCache:
    cache = SchedulerCache()
    for n in nodes:
        cache.add_node(n)
    for p in pods:
        cache.add_pod(p)
    return cache
