"""Which container of a pod to start, restart, recreate or leave: the kubelet's
``computePodActions``, as pure functions over the container records and the pod's spec.

A pod worker (:mod:`.podworker`) asks these functions, container by container, what to
do next, does it, and asks again on its next sync; nothing here performs an action or
reads a clock, so the policy can be tested on records alone.

Init containers
    Run in order, one at a time, each to successful completion; a failed one is
    restarted (with backoff) unless ``restartPolicy`` is Never, which fails the pod. A
    *sidecar* (an init container with ``restartPolicy: Always``) only has to be
    *started* -- running, its postStart hook done and its startup probe passed -- before
    the next one starts. Once an app container was started, initialization happened
    before and is not run again (a completed init container is never run again).

App containers
    Started when never started; when exited, restarted if the restart policy says so
    (Always; OnFailure after a non-zero exit), first at once, then after Kubernetes'
    CrashLoopBackOff (:mod:`.backoff`, applied by the worker). An exited app container
    that its restart policy leaves alone stays exited.

Sidecars
    Keep running for the pod's life: restarted with backoff whatever the pod's restart
    policy, with their probes and hooks as app containers have them. Once the app
    containers of a Never/OnFailure pod are all finished for good
    (:func:`apps_finished`), the sidecars are stopped (in reverse order, by
    :mod:`.termination`) and the phase follows from the app containers alone.

Spec changes
    Only the image of a container may change on a running pod. Each attempt remembers
    the hash of the spec it was created from (:func:`.containers.container_hash`, also a
    label on the runtime's container, so it survives an agent restart); a running app
    container or sidecar whose hash differs from the spec's is *recreated*: stopped
    (``Killing`` "Container c definition changed, will be restarted", preStop and the
    pod's grace period) and created again at once from the new spec, whatever the
    restart policy and without backoff; ``restartCount`` goes up and the status shows
    the new image. An exited app container due for a restart under a new spec starts
    from a fresh backoff (the kubelet keys its backoff by the container's hash).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from node_agent.agent.containers import ContainerRecord, container_hash
from proto.k8s import core_pb2

__all__ = [
    "Action",
    "InitStep",
    "Verb",
    "app_action",
    "app_started",
    "apps_finished",
    "init_step",
    "initialized",
    "restart_policy",
    "should_restart",
    "sidecar_action",
]


class Verb(enum.Enum):
    START = "start"
    """Create the next attempt now (the first one, or a retry of a failed creation)."""
    RESTART = "restart"
    """The attempt exited: start the next one once the CrashLoopBackOff allows."""
    RECREATE = "recreate"
    """Running from an older spec: stop it and start the new spec at once."""
    SETTLE = "settle"
    """Exited for good: no reason to show for not running (``waiting`` cleared)."""


@dataclass(frozen=True)
class Action:
    """What to do to one container now."""

    verb: Verb
    name: str
    message: str = ""
    """For RECREATE: the ``Killing`` event's message."""
    fresh_backoff: bool = False
    """For RESTART: the spec changed since the exit; the backoff starts over."""


@dataclass(frozen=True)
class InitStep:
    """Where initialization stands: how many init containers are done with (all of them
    once the pod is initialized) and what to do to the next one, if anything."""

    passed: int
    action: Action | None = None


def restart_policy(pod: core_pb2.Pod) -> str:
    """The pod's ``restartPolicy`` (Kubernetes' default: Always)."""
    return pod.spec.restart_policy or "Always"


def should_restart(policy: str, exit_code: int | None) -> bool:
    """Whether a container that exited with ``exit_code`` runs again under ``policy``."""
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


def app_started(records: Mapping[str, ContainerRecord]) -> bool:
    """Whether any app container was ever started (or failed to start)."""
    return any(r.attempt >= 0 for r in records.values() if not r.init)


def initialized(records: Mapping[str, ContainerRecord]) -> bool:
    """Whether the pod's initialization is over: an app container was started, or every
    init container succeeded (a sidecar: is running and started)."""
    if app_started(records):
        return True
    return all(
        r.succeeded or (r.sidecar and r.running and r.started) for r in records.values() if r.init
    )


def _started_after(
    inits: Sequence[core_pb2.Container], records: Mapping[str, ContainerRecord], index: int
) -> bool:
    """Whether a container after init container ``index`` was ever started."""
    if any(records[c.name].attempt >= 0 for c in inits[index + 1 :]):
        return True
    return app_started(records)


def init_step(
    inits: Sequence[core_pb2.Container], records: Mapping[str, ContainerRecord], policy: str
) -> InitStep:
    """Advance the init containers in order: at most one action, for the first init
    container not done with.

    A regular init container is done once it exited 0; a sidecar once it is started
    (running, its postStart hook and startup probe passed) -- or once a container after
    it was started: from then on :func:`sidecar_action` keeps it running.
    """
    if app_started(records):
        return InitStep(len(inits))  # app containers ran: initialization happened before
    for index, container in enumerate(inits):
        record = records[container.name]
        if record.sidecar:
            if (record.running and record.started) or _started_after(inits, records, index):
                continue
            if record.running:
                return InitStep(index)  # until it is started
            verb = Verb.RESTART if record.exited else Verb.START
            return InitStep(index, Action(verb, record.name))
        if record.succeeded:
            continue
        if record.running:
            return InitStep(index)
        if record.exited:
            if policy == "Never":
                return InitStep(index, Action(Verb.SETTLE, record.name))  # the pod fails
            return InitStep(index, Action(Verb.RESTART, record.name))
        return InitStep(index, Action(Verb.START, record.name))
    return InitStep(len(inits))


def app_action(
    record: ContainerRecord, container: core_pb2.Container, policy: str
) -> Action | None:
    """What to do to an app container once the pod is initialized (None: nothing)."""
    changed = record.attempt >= 0 and record.spec_hash != container_hash(container)
    if record.running:
        if changed:
            message = f"Container {record.name} definition changed, will be restarted"
            return Action(Verb.RECREATE, record.name, message=message)
        return None
    if record.status is None:
        return Action(Verb.START, record.name)
    if should_restart(policy, record.status.exit_code):
        return Action(Verb.RESTART, record.name, fresh_backoff=changed)
    return Action(Verb.SETTLE, record.name)


def apps_finished(records: Mapping[str, ContainerRecord], policy: str) -> bool:
    """Every app container exited and none will be restarted (never with Always)."""
    apps = [r for r in records.values() if not r.init]
    return bool(apps) and all(
        r.exited and r.status is not None and not should_restart(policy, r.status.exit_code)
        for r in apps
    )


def sidecar_action(record: ContainerRecord, container: core_pb2.Container) -> Action | None:
    """What to do to an init container among those passed while the pod runs: a sidecar
    is kept running whatever the pod's restart policy (with backoff) and recreated when
    its spec changed; a regular init container is left alone."""
    if not record.sidecar:
        return None
    if record.running:
        if record.spec_hash != container_hash(container):
            message = f"Init container {record.name} definition changed"
            return Action(Verb.RECREATE, record.name, message=message)
        return None
    if record.exited:
        return Action(Verb.RESTART, record.name)
    return None
