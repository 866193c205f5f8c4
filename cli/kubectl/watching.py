"""Following a watch until interrupted, as ``get -w`` and ``events -w`` do.

A watch stream can end (an API server restarts, a connection breaks) or be refused
because the server no longer keeps the history from the resourceVersion asked for. Like
kubectl, the CLI resumes from the last resourceVersion it saw, and, when that one has
expired, starts over from the current state. Each event goes to ``on_event``; the loop
returns only when cancelled (Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.client import ApiClient, Expired

__all__ = ["follow"]


async def follow(
    api: ApiClient,
    kind: Any,
    on_event: Callable[[Any], None],
    *,
    namespace: str,
    resource_version: str,
    label_selector: str = "",
    field_selector: str = "",
) -> None:
    """Call ``on_event`` with every watch event of ``kind`` from ``resource_version`` on."""
    rv = resource_version
    while True:
        try:
            async with api.watch(
                kind,
                namespace=namespace,
                resource_version=rv,
                label_selector=label_selector,
                field_selector=field_selector,
            ) as stream:
                async for event in stream:
                    rv = event.resource_version or rv
                    on_event(event)
        except Expired:
            rv = ""  # the server forgot our place: start over with the current state
