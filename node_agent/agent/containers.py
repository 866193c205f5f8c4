"""What the agent knows about one container of a pod, and how kubectl gets to see it.

A pod worker keeps one :class:`ContainerRecord` per container of its pod (init and app):
the newest *attempt* (attempt ``n`` is the ``n``-th restart; the runtime's id and status
of it), the final status of the attempt before it, why the container is not running when
it is not (``waiting``), its backoff, and what probes say (``ready``, ``started``).

:func:`render` turns a record into the ``ContainerStatus`` users read, with Kubernetes'
rules:

======================================  =============================================
record                                  ``state`` / ``lastState``
======================================  =============================================
never started, nothing wrong            waiting ``ContainerCreating`` (or
                                        ``PodInitializing`` while init containers run)
cannot be created (config, image, ...)  waiting with the error's reason and message
running                                 running (startedAt); lastState = previous exit
running, postStart hook not done        waiting ``ContainerCreating``
exited, will restart (backoff)          waiting ``CrashLoopBackOff``; lastState = this exit
exited, stays exited                    terminated (exitCode, reason, times, id);
                                        lastState = the exit before
======================================  =============================================

``restartCount`` is the attempt number (restarts of this container in this pod), and
``containerID`` is ``<runtime>://<id>``. ``started`` is reported for app containers and
sidecars (init containers with ``restartPolicy: Always``), whose ``ready`` follows their
readiness probe as an app container's does.

Spec changes. Of a running pod's containers only the image may change (the API server
refuses the rest). The kubelet notices by hashing the container's spec and comparing it
with the hash the running container was created from; :func:`container_hash` is that
hash over the fields that can change, and :data:`HASH_LABEL` carries it on the runtime's
container so that a restarted agent compares with what actually runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from node_agent.agent.backoff import RestartBackoff
from node_agent.runtime.base import ContainerId, ContainerSpec, ContainerState, ContainerStatus
from proto.k8s import core_pb2

__all__ = [
    "HASH_LABEL",
    "ContainerRecord",
    "Waiting",
    "container_hash",
    "is_sidecar",
    "running_hash",
    "render",
]

HASH_LABEL = "raftsman.io/container-hash"
"""Runtime label: :func:`container_hash` of the spec a container was created from."""

CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
START_ERROR = "StartError"
START_ERROR_EXIT_CODE = 128
"""containerd reports a container that could not be started as exited with 128."""


def container_hash(container: core_pb2.Container) -> str:
    """A hash of the fields of ``container`` that may change on a running pod (the image).

    Equal hashes mean the running container is what the spec asks for; a different one
    means the container must be recreated (the kubelet's ``containerChanged``).
    """
    mutable = core_pb2.Container(image=container.image)
    return hashlib.sha256(mutable.SerializeToString(deterministic=True)).hexdigest()[:16]


def running_hash(spec: ContainerSpec) -> str:
    """The :func:`container_hash` a runtime container was created from: its label, or
    (containers created before the label existed) the hash of the image it records."""
    return spec.labels.get(HASH_LABEL) or container_hash(core_pb2.Container(image=spec.image))


def is_sidecar(container: core_pb2.Container) -> bool:
    """An init container with ``restartPolicy: Always`` (Kubernetes' sidecar container)."""
    return container.restart_policy == "Always"


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass
class ContainerRecord:
    """One container of a pod, as its pod worker knows it (owned by that worker)."""

    name: str
    image: str
    init: bool = False
    sidecar: bool = False
    """An init container that keeps running (``restartPolicy: Always``)."""
    attempt: int = -1
    """The newest attempt started, or that failed to start; -1: none yet."""
    container_id: ContainerId | None = None
    """The runtime's id of that attempt (None when it never ran)."""
    status: ContainerStatus | None = None
    """What the runtime says about that attempt (a synthetic exit for a failed start)."""
    previous: ContainerStatus | None = None
    """Final status of the attempt before (``lastState``), if any."""
    previous_id: ContainerId | None = None
    waiting: Waiting | None = None
    """Why the container does not run now although it should (shown as its state)."""
    ready: bool = False
    started: bool = False
    """The startup probe passed (or there is none) for the running attempt."""
    hook_pending: bool = False
    """The running attempt's postStart hook has not completed yet."""
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    exited_at: float | None = None
    """Agent clock time when the current attempt was seen to exit (for the backoff)."""
    image_backoff: RestartBackoff | None = None
    retry_at: float | None = None
    """Agent clock time of the next start attempt after a failure (None: at once)."""
    spec_hash: str = ""
    """:func:`container_hash` of the spec the current attempt was created from."""

    @property
    def running(self) -> bool:
        return self.status is not None and self.status.state is ContainerState.RUNNING

    @property
    def exited(self) -> bool:
        return self.status is not None and self.status.state is ContainerState.EXITED

    @property
    def succeeded(self) -> bool:
        return self.exited and self.status is not None and self.status.exit_code == 0

    @property
    def restart_count(self) -> int:
        return max(self.attempt, 0)

    def new_attempt(self) -> int:
        """Move the current attempt to ``previous``; the number of the next attempt."""
        if self.status is not None:
            self.previous = self.status
            self.previous_id = self.container_id
        self.status = None
        self.container_id = None
        self.exited_at = None
        self.ready = False
        self.started = False
        self.hook_pending = False
        self.attempt += 1
        return self.attempt


def _stamp(target: object, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)  # type: ignore[attr-defined]


def _terminated(
    out: core_pb2.ContainerStateTerminated,
    status: ContainerStatus,
    container_id: ContainerId | None,
    runtime: str,
) -> None:
    out.exit_code = status.exit_code if status.exit_code is not None else 0
    out.signal = status.signal
    out.reason = status.reason
    out.message = status.message
    _stamp(out.started_at, status.started_at)
    _stamp(out.finished_at, status.finished_at)
    if container_id:
        out.container_id = f"{runtime}://{container_id}"


def render(
    record: ContainerRecord, *, runtime: str, initializing: bool = False
) -> core_pb2.ContainerStatus:
    """The Kubernetes ``ContainerStatus`` of ``record`` (see the module docstring).

    ``runtime`` names the runtime in container ids; ``initializing`` says the pod's init
    containers have not all completed (an app container then waits in PodInitializing).
    """
    out = core_pb2.ContainerStatus(
        name=record.name,
        image=record.image,
        image_id=record.image,
        restart_count=record.restart_count,
        ready=record.ready and record.running,
    )
    if not record.init or record.sidecar:
        out.started = record.running and record.started
    status = record.status
    if record.container_id:
        out.container_id = f"{runtime}://{record.container_id}"
    last: tuple[ContainerStatus, ContainerId | None] | None = None
    if record.previous is not None:
        last = (record.previous, record.previous_id)
    if status is not None and status.state is ContainerState.RUNNING and record.hook_pending:
        out.state.waiting.reason = CONTAINER_CREATING
    elif status is not None and status.state is ContainerState.RUNNING:
        _stamp(out.state.running.started_at, status.started_at)
    elif status is not None and record.waiting is None:
        _terminated(out.state.terminated, status, record.container_id, runtime)
    else:
        waiting = record.waiting
        if waiting is None:
            reason = POD_INITIALIZING if initializing else CONTAINER_CREATING
            waiting = Waiting(reason)
        out.state.waiting.reason = waiting.reason
        out.state.waiting.message = waiting.message
        if status is not None:
            # Exited and about to restart: the exit is what happened last.
            last = (status, record.container_id)
    if last is not None:
        _terminated(out.last_state.terminated, last[0], last[1], runtime)
    return out
