"""Recording Events about objects without ever blocking a control loop on it.

``recorder.event(pod, "Warning", "FailedScheduling", "0/3 nodes are available: ...")``
returns at once: the Event goes into a bounded buffer and a background task sends it with
the API server's RecordEvent call, which aggregates repeats into one Event with a count.
When the buffer is full (the API server is slow or away) new Events are dropped and
counted -- an Event is a hint for humans, and a control loop that waited for one would
stall the cluster for a log line. This is client-go's event broadcaster in one class.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from actors.client import ApiClient, ApiError, kind_info
from proto.k8s import kinds

__all__ = ["EventRecorder", "NORMAL", "WARNING", "object_reference"]

logger = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

_EVENT = kinds.by_kind("Event")


def object_reference(obj: Any) -> Any:
    """An ObjectReference (kind, namespace, name, uid, apiVersion, resourceVersion) to ``obj``."""
    ref = _EVENT.new().involved_object
    info = kind_info(type(obj))
    ref.kind = info.kind
    ref.api_version = info.api_version
    ref.namespace = obj.metadata.namespace
    ref.name = obj.metadata.name
    ref.uid = obj.metadata.uid
    ref.resource_version = str(obj.metadata.resource_version)
    return ref


class EventRecorder:
    """Buffers Events and sends them from :meth:`run`; ``component`` is the Event source."""

    def __init__(
        self, api: ApiClient, component: str, *, host: str = "", buffer: int = 1000
    ) -> None:
        self.api = api
        self.component = component
        self.host = host
        self._send, self._receive = trio.open_memory_channel[Any](buffer)
        self.dropped = 0
        self.sent = 0

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        """Queue an Event about ``obj``; never blocks, drops (and counts) when full."""
        if type_ not in (NORMAL, WARNING):
            raise ValueError(f"event type must be {NORMAL!r} or {WARNING!r}, not {type_!r}")
        event = _EVENT.new()
        event.involved_object.CopyFrom(object_reference(obj))
        event.type = type_
        event.reason = reason
        event.message = message
        event.source.component = self.component
        event.source.host = self.host
        event.reporting_component = self.component
        event.reporting_instance = self.host
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning(
                    "event buffer full; %d event(s) dropped (latest: %s %s)",
                    self.dropped,
                    reason,
                    message,
                )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send buffered Events until cancelled; one failed send is logged and skipped."""
        task_status.started()
        async for event in self._receive:
            try:
                await self.api.record_event(event)
                self.sent += 1
            except ApiError as exc:
                logger.info(
                    "could not record event %s/%s: %s",
                    event.reason,
                    event.involved_object.name,
                    exc,
                )
        await trio.sleep(math.inf)  # pragma: no cover - the channel is never closed
