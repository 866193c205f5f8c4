"""Stopping the pods a node agent left running, when the whole cluster goes down.

A node agent that stops leaves its containers running, on purpose: an agent restarted
by its supervisor (or after a crash) re-adopts them without restarting anyone's
workload, as the kubelet does. ``raftsman down`` is different -- the user asked for the
whole cluster to stop -- so after the node agents have exited, the containers their
``process`` runtime still tracks in ``<data-dir>/containers`` get the same treatment
as any process here: SIGTERM to the process group, SIGKILL after a grace period. Their
state stays on disk (exited), so ``up`` on the same directory starts the pods again
through the usual restart policy.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import trio

log = logging.getLogger(__name__)

CONTAINER_STOP_GRACE = 5.0


def containers_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "containers"


async def stop_node_pods(data_dir: Path | str, *, grace: float = CONTAINER_STOP_GRACE) -> int:
    """Stop every running container of the node whose agent kept its data in
    ``data_dir``; how many were running."""
    from node_agent.runtime.process import ProcessRuntime

    state_dir = containers_dir(data_dir)
    if not state_dir.is_dir():
        return 0
    runtime = ProcessRuntime(state_dir=state_dir)
    running = [c for c in await runtime.containers() if c.status.running]
    async with trio.open_nursery() as nursery:
        for info in running:
            nursery.start_soon(partial(runtime.stop, info.id, grace=grace))
    if running:
        log.info("stopped %d container(s) of %s", len(running), data_dir)
    return len(running)
