"""Following the running attempts of a pod's containers until they exit.

Once a pod worker (:mod:`.podworker`) has started an attempt of a container -- or
adopted one that was running before an agent restart -- a task follows it: it waits for
the runtime to report the exit, and meanwhile, for app containers and sidecars, plays
its hooks and probes (:func:`.lifecycle.supervise`). The exit is written into the
container's record and the worker is poked; the worker's next sync decides what follows
(:mod:`.sequencing`). A container the runtime loses track of counts as exited with
137 and reason ``ContainerStatusUnknown``, as the kubelet reports it.

Each container has at most one such task, in a cancel scope of its own
(:class:`AttemptWatchers`): watching a new attempt cancels the old one's, and stopping
a container (deletion, a terminal pod, a changed spec) cancels its probes first. A task
whose attempt was superseded before it ran does nothing, and an exit reported for an
attempt that is no longer the record's current one is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import trio

from node_agent.agent import lifecycle
from node_agent.agent.containers import ContainerRecord
from node_agent.runtime.base import (
    ContainerId,
    ContainerRuntime,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
)
from proto.k8s import core_pb2

__all__ = ["AttemptWatchers", "lost"]

logger = logging.getLogger(__name__)


def lost(record: ContainerRecord, container_id: ContainerId, message: str) -> ContainerStatus:
    """The final status of a container the runtime no longer knows."""
    return ContainerStatus(
        id=container_id,
        state=ContainerState.EXITED,
        started_at=record.status.started_at if record.status else None,
        finished_at=datetime.now(UTC),
        exit_code=137,
        reason="ContainerStatusUnknown",
        message=message,
    )


class AttemptWatchers:
    """The tasks following one pod's running attempts, one cancel scope per container.

    ``changed`` is called when a record changed (an exit; probes and hooks call it too);
    ``event`` records an Event about the pod. Used by the pod's worker task only.
    """

    def __init__(
        self,
        runtime: ContainerRuntime,
        *,
        key: str,
        changed: Callable[[], None],
        event: lifecycle.EventFn,
    ) -> None:
        self._runtime = runtime
        self._key = key
        self._changed = changed
        self._event = event
        self._scopes: dict[str, trio.CancelScope] = {}

    def cancel(self, name: str) -> None:
        """Stop following container ``name`` (its probes and hooks end)."""
        scope = self._scopes.pop(name, None)
        if scope is not None:
            scope.cancel()

    def cancel_all(self) -> None:
        for scope in self._scopes.values():
            scope.cancel()
        self._scopes.clear()

    def watch(
        self,
        nursery: trio.Nursery,
        record: ContainerRecord,
        container: core_pb2.Container | None,
        *,
        pod_ip: str,
        pod_grace: float,
        adopted: bool = False,
    ) -> None:
        """Follow the running attempt of ``record`` until it exits, with its hooks and
        probes when it is an app container or a sidecar and ``container`` (its spec) is
        known, in a task of ``nursery``."""
        container_id = record.container_id
        assert container_id is not None
        self.cancel(record.name)
        scope = trio.CancelScope()
        self._scopes[record.name] = scope
        supervised = container is not None and (not record.init or record.sidecar)
        probe_ctx = (
            None
            if container is None
            else lifecycle.probe_context(self._runtime, container_id, container, pod_ip)
        )

        async def wait(done: trio.CancelScope) -> None:
            try:
                status = await self._runtime.wait(container_id)
            except ContainerRuntimeError as exc:
                logger.warning("pod %s: lost container %s: %s", self._key, container_id, exc)
                status = lost(record, container_id, str(exc))
            if record.container_id == container_id:
                record.status = status
                record.exited_at = trio.current_time()
                record.ready = False
                record.hook_pending = False
                self._changed()
            done.cancel()

        async def attempt() -> None:
            if scope.cancel_called or record.container_id != container_id:
                return  # superseded before this task ran (recreated, stopped)
            with scope:
                async with trio.open_nursery() as inner:
                    inner.start_soon(wait, inner.cancel_scope)
                    if supervised and container is not None and probe_ctx is not None:
                        inner.start_soon(
                            partial(
                                lifecycle.supervise,
                                self._runtime,
                                record,
                                container,
                                probe_ctx,
                                adopted=adopted,
                                pod_grace=pod_grace,
                                changed=self._changed,
                                event=self._event,
                            )
                        )

        nursery.start_soon(attempt)
