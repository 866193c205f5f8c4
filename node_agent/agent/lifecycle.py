"""One running container instance: its hooks and probes, and how it is stopped.

The pod worker starts a container, then hands the running instance to
:func:`supervise`, which plays Kubernetes' sequence for it while it runs:

1. **postStart** (``lifecycle.postStart``; not re-run for an instance adopted after an
   agent restart). Until it completes the container shows as waiting
   ``ContainerCreating``, as the kubelet's blocked pod worker makes it look; if it
   fails, a ``FailedPostStartHook`` event is recorded and the container is killed (the
   restart policy takes it from there).
2. **startup probe**: ``started`` stays false, and liveness and readiness wait, until it
   succeeds; if it fails ``failureThreshold`` times the container is killed
   (``Container c failed startup probe, will be restarted``).
3. **readiness probe** runs from then on, for the instance's life: ``ready`` follows it
   (without one, ``ready`` is true once started); **liveness probe** too: on failure the
   container is killed (``Container c failed liveness probe, will be restarted``) with
   the probe's ``terminationGracePeriodSeconds`` or the pod's.

Every failed check is a ``Warning Unhealthy`` event (``Readiness probe failed: ...``); the
API server aggregates repeats.

:func:`stop` is how any container is stopped (deletion, liveness, startup, postStart):
the **preStop** hook first, within the grace period, then SIGTERM with what is left of
it, then SIGKILL (the runtime's ``stop``). Kubernetes counts the grace period from before
the preStop hook, and so does this.

Both are cancelled with the instance (when it exits or the pod is deleted); neither ever
raises for a bad hook, probe or a container that is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import trio

from node_agent.agent.containers import ContainerRecord
from node_agent.agent.hooks import run_handler
from node_agent.agent.probes import ExecFn, ProbeContext, ProbeResult, ProbeWorker
from node_agent.runtime.base import (
    ContainerId,
    ContainerNotFoundError,
    ContainerRuntime,
    ContainerRuntimeError,
    ContainerStatus,
)
from proto.k8s import core_pb2

__all__ = ["EventFn", "initial_state", "probe_context", "stop", "supervise"]

logger = logging.getLogger(__name__)

EventFn = Callable[[str, str, str], None]
"""``(type, reason, message)``: an Event about the pod."""

POST_START_TIMEOUT = 120.0
"""A postStart hook still running after this long counts as failed."""
_MAX_OUTPUT = 10 * 1024


def initial_state(container: core_pb2.Container) -> tuple[bool, bool, bool]:
    """``(hook_pending, started, ready)`` of a container that was just started, as
    :func:`supervise` will set them first -- so that the first status written after a
    start is already the right one."""
    hook = container.lifecycle.HasField("post_start")
    started = not hook and not container.HasField("startup_probe")
    return hook, started, started and not container.HasField("readiness_probe")


def probe_context(
    runtime: ContainerRuntime, container_id: ContainerId, container: core_pb2.Container, pod_ip: str
) -> ProbeContext:
    """What probes and hooks of this instance need: pod IP, named ports, exec."""

    async def run(argv: Sequence[str], timeout: float) -> tuple[int, bytes]:
        output = bytearray()

        async def sink(chunk: bytes) -> None:
            output.extend(chunk[: max(0, _MAX_OUTPUT - len(output))])

        code = await runtime.exec(container_id, list(argv), stdout=sink, stderr=sink)
        return code, bytes(output)

    exec_fn: ExecFn = run
    return ProbeContext(
        pod_ip=pod_ip,
        ports={p.name: p.container_port for p in container.ports if p.name},
        exec=exec_fn,
    )


async def stop(
    runtime: ContainerRuntime,
    record: ContainerRecord,
    container: core_pb2.Container | None,
    ctx: ProbeContext | None,
    *,
    deadline: float,
    event: EventFn,
) -> ContainerStatus | None:
    """preStop, then SIGTERM, then SIGKILL at ``deadline`` (trio time); the final status.

    None when the container is gone from the runtime; a runtime that cannot stop it is
    logged and its status is left as it was (the caller retries).
    """
    container_id = record.container_id
    if container_id is None:
        return record.status
    if (
        container is not None
        and ctx is not None
        and container.lifecycle.HasField("pre_stop")
        and deadline > trio.current_time()
    ):
        ok, message = await run_handler(
            container.lifecycle.pre_stop, ctx, timeout=deadline - trio.current_time()
        )
        if not ok:
            event("Warning", "FailedPreStopHook", f"PreStopHook failed: {message}")
    grace = max(0.0, deadline - trio.current_time())
    try:
        return await runtime.stop(container_id, grace=grace)
    except ContainerNotFoundError:
        return None
    except ContainerRuntimeError as exc:
        logger.warning("stopping container %s (%s): %s", record.name, container_id, exc)
        return record.status


async def supervise(
    runtime: ContainerRuntime,
    record: ContainerRecord,
    container: core_pb2.Container,
    ctx: ProbeContext,
    *,
    adopted: bool,
    pod_grace: float,
    changed: Callable[[], None],
    event: EventFn,
) -> None:
    """Run the hooks and probes of the running instance ``record`` (module docstring).

    ``changed`` is called when ``started``, ``ready`` or the hook state changed (the
    worker then writes the status). Returns when the instance was killed or needs no
    more watching; the caller cancels it when the instance exits.
    """

    async def kill(reason: str, grace: float) -> None:
        event("Normal", "Killing", f"Container {record.name} {reason}, will be restarted")
        await stop(
            runtime,
            record,
            container,
            ctx,
            deadline=trio.current_time() + grace,
            event=event,
        )

    def unhealthy(kind: str) -> Callable[[ProbeResult, str], None]:
        def report(result: ProbeResult, message: str) -> None:
            if result is ProbeResult.FAILURE:
                event("Warning", "Unhealthy", f"{kind} probe failed: {message}")

        return report

    lifecycle = container.lifecycle
    if not adopted and lifecycle.HasField("post_start"):
        record.hook_pending = True
        changed()
        ok, message = await run_handler(lifecycle.post_start, ctx, timeout=POST_START_TIMEOUT)
        record.hook_pending = False
        if not ok:
            event("Warning", "FailedPostStartHook", f"PostStartHook failed: {message}")
            await kill("failed its postStart hook", pod_grace)
            return
        changed()

    if container.HasField("startup_probe"):
        record.started = False
        changed()
        startup = ProbeWorker(
            container.startup_probe,
            "startup",
            ctx,
            lambda _r, _m: None,
            on_probe=unhealthy("Startup"),
        )
        await startup.run()
        if startup.result is not ProbeResult.SUCCESS:
            await kill("failed startup probe", _probe_grace(container.startup_probe, pod_grace))
            return
    record.started = True
    record.ready = not container.HasField("readiness_probe")
    changed()

    liveness_failed = False
    async with trio.open_nursery() as nursery:
        if container.HasField("readiness_probe"):

            def readiness(result: ProbeResult, _message: str) -> None:
                record.ready = result is ProbeResult.SUCCESS
                changed()

            nursery.start_soon(
                ProbeWorker(
                    container.readiness_probe,
                    "readiness",
                    ctx,
                    readiness,
                    on_probe=unhealthy("Readiness"),
                ).run
            )
        if container.HasField("liveness_probe"):
            liveness = ProbeWorker(
                container.liveness_probe,
                "liveness",
                ctx,
                lambda _r, _m: None,
                on_probe=unhealthy("Liveness"),
            )
            await liveness.run()
            liveness_failed = liveness.result is ProbeResult.FAILURE
            nursery.cancel_scope.cancel()
    if liveness_failed:
        record.ready = False
        changed()
        await kill("failed liveness probe", _probe_grace(container.liveness_probe, pod_grace))


def _probe_grace(probe: core_pb2.Probe, pod_grace: float) -> float:
    if probe.HasField("termination_grace_period_seconds"):
        return float(max(1, probe.termination_grace_period_seconds))
    return pod_grace
