"""The seam between the node agent's pod workers and its gRPC API: finding containers.

The API (:mod:`node_agent.agent.service`) answers ``logs``, ``exec`` and ``top`` for
pods *by name*; the runtime knows containers *by id*. Only the pod workers know which
container id and log file are the current (or previous) instance of container ``c`` of
pod ``ns/p``. :class:`ContainerLookup` is what the workers offer the API, and nothing
more: the API never sees Pods, workers or the apiserver, and tests give it a small fake.

Contract (every implementation)
    * Answers from memory, at once, without blocking (plain functions, not coroutines);
      callable from any task of the agent's trio run.
    * ``find`` returns None when the pod is not on this node or has no container of that
      name. A known container that has not started yet gives a :class:`ContainerRef`
      with ``container_id`` and ``log_path`` None. With ``previous=True`` it describes the
      instance before the current one: ``log_path`` None when there was none.
    * ``running`` is the worker's latest knowledge; the runtime has the last word (an
      exec on a container that just exited fails with ``ContainerNotRunningError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from node_agent.runtime.base import ContainerId

__all__ = ["ContainerLookup", "ContainerRef"]


@dataclass(frozen=True)
class ContainerRef:
    """One instance of a container of a pod, as the pod worker knows it."""

    container_id: ContainerId | None  # None if not running / never started
    log_path: Path | None  # the instance's log file (current, or previous with previous=True)
    running: bool


class ContainerLookup(Protocol):
    """Finds the containers of the pods on this node; see the module docstring."""

    def find(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> ContainerRef | None: ...

    def default_container(self, namespace: str, pod: str) -> str | None:
        """The pod's first app container, or None when the pod is not on this node."""
        ...

    def pods(self) -> list[tuple[str, str]]:
        """(namespace, name) of every pod on this node."""
        ...

    def containers(self, namespace: str, pod: str) -> list[tuple[str, ContainerRef]]:
        """(name, current instance) of every container of the pod, init containers too."""
        ...
