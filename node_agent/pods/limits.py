"""A container's resource limits as the runtime wants them: millicores and bytes.

Kubernetes quantities are exact decimals (:mod:`actors.apiserver.quantity`); a runtime
needs integers. cpu is rounded *up* to whole millicores (``0.1m`` is 1m, never 0) and
memory up to whole bytes, as Kubernetes does. Only ``limits`` matter to the runtime;
requests are the scheduler's business.
"""

from __future__ import annotations

from actors.apiserver.quantity import QuantityError, milli_value, value
from node_agent.pods.errors import ConfigError
from node_agent.runtime.base import Limits
from proto.k8s import core_pb2

__all__ = ["container_limits"]


def container_limits(container: core_pb2.Container) -> Limits:
    """``resources.limits`` of ``container`` (cpu, memory); unset ones are None."""
    limits = container.resources.limits
    try:
        cpu = milli_value(limits["cpu"]) if "cpu" in limits else None
        memory = value(limits["memory"]) if "memory" in limits else None
    except QuantityError as exc:
        raise ConfigError(f"container {container.name}: resources.limits: {exc}") from None
    if cpu is not None and cpu <= 0:
        raise ConfigError(f"container {container.name}: resources.limits.cpu must be positive")
    if memory is not None and memory <= 0:
        raise ConfigError(f"container {container.name}: resources.limits.memory must be positive")
    return Limits(cpu_millis=cpu, memory_bytes=memory)
