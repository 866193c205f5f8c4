"""What a pod asks for and what a node offers, as integers the scheduler can add up.

Objects carry resources as the quantity strings their authors wrote (``"250m"``,
``"64Mi"``). Every placement decision adds and compares them, thousands of times per
second in a burst, so they are parsed once -- when a pod or a node is filed -- into a
:class:`Resources`: milli-cpu, bytes of memory, and a map of every other resource
(``ephemeral-storage``, extended resources such as ``nvidia.com/gpu``) in whole units.
Parsing is exact (:mod:`actors.apiserver.quantity`) and rounds up, as Kubernetes does.

A pod's request is Kubernetes' ``PodRequests``:

* the sum of its containers' requests;
* init containers run one at a time before them, so the pod needs at least the largest
  init container's request -- per resource, the result is the maximum of the two;
* an init container with ``restartPolicy: Always`` is a sidecar: it keeps running beside
  the containers, so its request is added to the sum, and every init container that
  starts after it runs beside it too.

Two views exist (Kubernetes' ``NonZeroRequested``): for *fit* a container without a cpu or
memory request asks for nothing, but for *scoring* it counts as 100m cpu and 200Mi of
memory, so that a node full of request-less pods does not look empty to the spreading
scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from actors.apiserver.quantity import QuantityError, milli_value, value

__all__ = [
    "CPU",
    "DEFAULT_MILLI_CPU_REQUEST",
    "DEFAULT_MEMORY_REQUEST",
    "MEMORY",
    "PODS",
    "Resources",
    "node_allocatable",
    "pod_requests",
]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"

DEFAULT_MILLI_CPU_REQUEST = 100
"""Kubernetes' ``DefaultMilliCPURequest``: what a container without a cpu request counts
as when scoring (never when checking fit)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""Kubernetes' ``DefaultMemoryRequest`` (200Mi), likewise."""


@lru_cache(maxsize=4096)
def _milli(text: str) -> int:
    return milli_value(text)


@lru_cache(maxsize=4096)
def _units(text: str) -> int:
    return value(text)


@dataclass(slots=True)
class Resources:
    """Amounts of resources: ``milli_cpu``, ``memory`` (bytes), ``scalars`` (whole units)."""

    milli_cpu: int = 0
    memory: int = 0
    scalars: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, quantities: Mapping[str, str], *, skip: Iterable[str] = ()) -> Resources:
        """From a ``{name: quantity}`` map; :class:`ValueError` names a bad entry."""
        out = cls()
        skipped = set(skip)
        for name, text in quantities.items():
            if name in skipped:
                continue
            try:
                if name == CPU:
                    out.milli_cpu = _milli(text)
                elif name == MEMORY:
                    out.memory = _units(text)
                else:
                    out.scalars[name] = _units(text)
            except QuantityError as exc:
                raise ValueError(f"resource {name!r}: {exc}") from None
        return out

    def copy(self) -> Resources:
        return Resources(self.milli_cpu, self.memory, dict(self.scalars))

    def add(self, other: Resources) -> None:
        self.milli_cpu += other.milli_cpu
        self.memory += other.memory
        for name, amount in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + amount

    def subtract(self, other: Resources) -> None:
        self.milli_cpu -= other.milli_cpu
        self.memory -= other.memory
        for name, amount in other.scalars.items():
            left = self.scalars.get(name, 0) - amount
            if left:
                self.scalars[name] = left
            else:
                self.scalars.pop(name, None)

    def max_with(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        for name, amount in other.scalars.items():
            self.scalars[name] = max(self.scalars.get(name, 0), amount)

    @property
    def is_zero(self) -> bool:
        return not self.milli_cpu and not self.memory and not any(self.scalars.values())


def _container(container: Any, *, non_zero: bool) -> Resources:
    requests = container.resources.requests
    out = Resources.parse(requests) if requests else Resources()
    if non_zero:
        if CPU not in requests:
            out.milli_cpu = DEFAULT_MILLI_CPU_REQUEST
        if MEMORY not in requests:
            out.memory = DEFAULT_MEMORY_REQUEST
    return out


def pod_requests(pod: Any, *, non_zero: bool = False) -> Resources:
    """What ``pod`` requests (see the module doc); ``non_zero``: the scoring view."""
    total = Resources()
    for container in pod.spec.containers:
        total.add(_container(container, non_zero=non_zero))
    sidecars = Resources()
    init_peak = Resources()
    for container in pod.spec.init_containers:
        request = _container(container, non_zero=non_zero)
        if container.restart_policy == "Always":
            total.add(request)
            sidecars.add(request)
            running = sidecars.copy()
        else:
            running = sidecars.copy()
            running.add(request)
        init_peak.max_with(running)
    total.max_with(init_peak)
    return total


def node_allocatable(node: Any) -> tuple[Resources, int]:
    """``(resources, pod slots)`` from ``status.allocatable``; absent entries are 0,
    as in Kubernetes (a node that reports no ``pods`` takes none)."""
    allocatable = node.status.allocatable
    resources = Resources.parse(allocatable, skip=(PODS,))
    pods = _units(allocatable[PODS]) if PODS in allocatable else 0
    return resources, pods
