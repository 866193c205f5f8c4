"""The pod worker: one task per pod that converges its containers on the pod's spec.

The kubelet runs one goroutine per pod that serializes everything done to that pod;
this is the same, as a trio task (an actor). Inputs never block the caller: the pod
manager hands over a new version of the pod (:meth:`PodWorker.update`), says the pod is
gone from the API (:meth:`PodWorker.remove`), or that something the pod depends on
changed (:meth:`PodWorker.poke`); a container's exit or a probe's verdict arrives from a
task the worker owns (:mod:`.attempts`). Each input only marks the worker dirty; the
worker then runs one **sync**: a level-triggered pass from the pod it knows and what the
runtime reports to the next actions, after which it writes the pod's status (through the
coalescing status manager) and sleeps until the next input or the next timer it set (a
backoff ending, a retry). Work for one pod is therefore never done twice at once, and a
slow pod never delays another.

One sync, for a pod that is not being deleted
    1. A terminal pod (Succeeded/Failed, from this worker or from the status it finds
       on the API server after a restart) is never started again: what still runs of
       it is stopped (sidecars of a finished pod, everything of an evicted one), then
       its address is released (:mod:`.termination`).
    2. The pod's IP (from the node's pod CIDR; ``hostNetwork`` pods use the node's) and
       volumes (set up on every sync, which also refreshes ConfigMap/Secret volumes).
    3. Init containers in order, one at a time, each to successful completion (a
       sidecar: until it is started).
    4. App containers: started, restarted (after CrashLoopBackOff) or left exited as
       the restart policy says.
    5. Sidecars kept running for the pod's life, and stopped once the app containers of
       a Never/OnFailure pod are all finished for good.
    6. The status: container statuses (:mod:`.containers`), phase and conditions
       (:mod:`.podstatus`).

    Steps 3-5 are a policy, with the rules for spec changes (a running container whose
    image changed is recreated), in :mod:`.sequencing`: pure functions say which
    container to start, restart, recreate or leave, and the worker does it.

Failing a pod (:meth:`PodWorker.evict`, :meth:`PodWorker.reject`). The node fails a pod
for reasons of its own in one way: phase ``Failed`` with the reason and message in the
status, a Warning event with that reason, every container stopped (preStop, grace of
the pod, app containers first and sidecars last) and none restarted; the Pod object stays
(its controller replaces it). Admission (:mod:`.pods`) rejects a pod before anything of
it ran; eviction stops a running one.

Creating a container fails in ways users know by name (:mod:`.containerspec`):
``ErrImagePull`` then ``ImagePullBackOff``, ``CreateContainerConfigError`` (retried when
a ConfigMap or Secret changes, and every ``config_retry`` seconds), a runtime
``StartError`` (shown as a terminated attempt with exit code 128 and restarted like a
crash). Any other exception in a sync is a bug: it is logged, reported as a Warning
event on the pod, and the sync retried with backoff -- one bad pod never takes the
agent down.

Deletion (``deletionTimestamp`` set, or the pod gone from the API): every running
container is stopped within the grace period, then what the pod leaves on the node is
cleaned up and the Pod object deleted -- see :mod:`.termination`.

Re-adoption. A worker created with the containers the runtime already has for its pod
(after an agent restart) takes them over as they are: running ones keep running with
their restart counts, and exits that happened meanwhile go through the restart policy.
Cancelling a worker (the agent stops) never stops its containers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from node_agent.agent import lifecycle
from node_agent.agent.attempts import AttemptWatchers, lost
from node_agent.agent.backoff import RestartBackoff
from node_agent.agent.containers import (
    CRASH_LOOP_BACK_OFF,
    HASH_LABEL,
    IMAGE_PULL_BACK_OFF,
    START_ERROR,
    START_ERROR_EXIT_CODE,
    ContainerRecord,
    Waiting,
    container_hash,
    is_sidecar,
    render,
    running_hash,
)
from node_agent.agent.containerspec import build_container_spec
from node_agent.agent.context import PodContext
from node_agent.agent.podstatus import TERMINAL_PHASES, pod_status, rejected_status
from node_agent.agent.sequencing import (
    Action,
    Verb,
    app_action,
    apps_finished,
    init_step,
    initialized,
    restart_policy,
    sidecar_action,
)
from node_agent.agent.termination import (
    StopOutcome,
    Stopper,
    clean_up,
    delete_pod_object,
    deletion_grace,
    pod_grace,
    release_ip,
    remove_containers,
)
from node_agent.network import PodIPError
from node_agent.pods.errors import ImageNotFoundError, PodSetupError
from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerId,
    ContainerInfo,
    ContainerNotFoundError,
    ContainerState,
    ContainerStatus,
    StartError,
)
from proto.k8s import core_pb2

__all__ = ["PodWorker"]

logger = logging.getLogger(__name__)

REJECTED_PREFIX = "Pod was rejected: "
"""The kubelet's prefix of the status message of a pod it refused to admit."""
_ERROR_RETRY_INITIAL = 1.0
_ERROR_RETRY_MAX = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def _key(pod: core_pb2.Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def _metadata_changed(old: Any, new: Any) -> bool:
    """Whether what a sync reads of metadata changed (deletion, labels, annotations)."""
    return (
        old.deletion_timestamp != new.deletion_timestamp
        or old.deletion_grace_period_seconds != new.deletion_grace_period_seconds
        or old.labels != new.labels
        or old.annotations != new.annotations
    )


class PodWorker:
    """Converges one pod (by uid) on its spec; see the module docstring."""

    def __init__(
        self, ctx: PodContext, pod: core_pb2.Pod, *, adopted: Sequence[ContainerInfo] = ()
    ) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = pod.metadata.uid
        self.removed = False
        """The pod is gone from the API server (force deletion, or deleted by us)."""
        self.finished = trio.Event()
        self.syncs = 0
        self.terminal = pod.status.phase if pod.status.phase in TERMINAL_PHASES else ""
        self._reason = pod.status.reason if self.terminal else ""
        self._message = pod.status.message if self.terminal else ""
        self._disruption = ""
        self._rejected = False
        self._keep_stored = bool(self.terminal) and not adopted
        """The pod was finished before this worker and it has nothing of it: the stored
        status is the truth and is left alone."""
        self._dirty = trio.Event()
        self._records: dict[str, ContainerRecord] = {}
        self._stale: list[ContainerId] = []
        self._watchers = AttemptWatchers(
            ctx.runtime, key=_key(pod), changed=self.poke, event=self._event
        )
        self._stopper = Stopper(ctx.runtime, event=self._event)
        self._nursery: trio.Nursery | None = None
        self._pod_ip = ctx.ips.lookup(self.uid) or ""
        self._pod_problem: Waiting | None = None
        self._start_time = _now()
        self._wake_at = math.inf
        self._error_retry = _ERROR_RETRY_INITIAL
        self._volume_paths: dict[str, Path] = {}
        self._last_status: core_pb2.PodStatus | None = None
        self._periodic = False
        for container in pod.spec.init_containers:
            self._records[container.name] = self._new_record(container, init=True)
        for container in pod.spec.containers:
            self._records[container.name] = self._new_record(container, init=False)
        self._adopt(adopted)

    # ------------------------------------------------------------------ inputs

    def update(self, pod: core_pb2.Pod) -> None:
        """A newer version of the pod (same uid)."""
        old = self.pod
        self.pod = pod
        if pod.spec != old.spec:
            images = {c.name: c.image for c in (*old.spec.init_containers, *old.spec.containers)}
            for record in self._records.values():
                record.retry_at = None
                container = self._container(record.name)
                if container is not None and container.image != images.get(record.name):
                    record.image_backoff = None  # pulls of another image start afresh
                    if record.attempt < 0:
                        record.image = container.image
        elif not _metadata_changed(old.metadata, pod.metadata):
            return  # only the status moved (most often: our own write coming back)
        if pod.metadata.HasField("deletion_grace_period_seconds"):
            grace = max(0, pod.metadata.deletion_grace_period_seconds)
            self._stopper.shorten(trio.current_time() + grace)
        self.poke()

    def remove(self) -> None:
        """The pod is gone from the API server: stop its containers and clean up."""
        if not self.removed:
            self.removed = True
            self._stopper.shorten(trio.current_time() + self.ctx.timings.force_grace)
        self.poke()

    def poke(self) -> None:
        """Sync soon."""
        self._dirty.set()

    def evict(self, reason: str, message: str) -> bool:
        """Fail the pod for a node-level ``reason`` (``Evicted``): every container is
        stopped (preStop, then SIGTERM, SIGKILL after ``terminationGracePeriodSeconds``;
        app containers first, sidecars last), none is restarted, and the pod is left
        ``Failed`` with ``reason`` and ``message`` and a ``Warning`` event -- its object
        stays for its controller to replace. False when the pod is already finished or
        being deleted."""
        if self.terminal or self.removed or self.pod.metadata.HasField("deletion_timestamp"):
            return False
        self._disruption = message
        self._fail(reason, message, event_message=message)
        return True

    def reject(self, reason: str, message: str) -> None:
        """Admission refused the pod (call before :meth:`run`): it is ``Failed`` with
        ``reason`` and ``Pod was rejected: <message>`` and none of its containers ever
        starts."""
        self._rejected = True
        self._fail(reason, REJECTED_PREFIX + message, event_message=message)

    def _fail(self, reason: str, message: str, *, event_message: str) -> None:
        """The one way the node fails a pod for a reason of its own (admission, eviction)."""
        self._reason, self._message = reason, message
        self._keep_stored = False
        self.ctx.events.event(self.pod, "Warning", reason, event_message)
        logger.info("pod %s: %s: %s", self.key, reason, message)
        self._become_terminal("Failed")

    def inputs_changed(self) -> None:
        """Something the pod's containers are built from changed (a ConfigMap, a Secret):
        containers that could not be configured are retried at once."""
        for record in self._records.values():
            if record.waiting is not None and record.image_backoff is None:
                record.retry_at = None
        self.poke()

    # ------------------------------------------------------------------ views

    @property
    def key(self) -> str:
        return _key(self.pod)

    @property
    def pod_ip(self) -> str:
        return self._pod_ip

    def records(self) -> list[ContainerRecord]:
        """The container records (init first, in spec order); read-only for callers."""
        return list(self._records.values())

    def record(self, name: str) -> ContainerRecord | None:
        return self._records.get(name)

    # ------------------------------------------------------------------ setup

    def _new_record(self, container: core_pb2.Container, *, init: bool) -> ContainerRecord:
        return ContainerRecord(
            name=container.name,
            image=container.image,
            init=init,
            sidecar=init and is_sidecar(container),
            backoff=RestartBackoff(self.ctx.timings.backoff),
        )

    def _adopt(self, adopted: Sequence[ContainerInfo]) -> None:
        by_name: dict[str, list[ContainerInfo]] = {}
        for info in adopted:
            by_name.setdefault(info.spec.container_name, []).append(info)
        now = trio.current_time()
        for name, infos in by_name.items():
            infos.sort(key=lambda i: i.spec.attempt)
            record = self._records.get(name)
            if record is None:
                self._stale.extend(i.id for i in infos)
                continue
            current = infos[-1]
            record.attempt = current.spec.attempt
            record.container_id = current.id
            record.status = current.status
            record.image = current.spec.image or record.image
            record.spec_hash = running_hash(current.spec)
            if current.status.state is ContainerState.EXITED:
                record.exited_at = now
            if len(infos) > 1:
                record.previous = infos[-2].status
                record.previous_id = infos[-2].id
            self._stale.extend(i.id for i in infos[:-2])

    def _container(self, name: str) -> core_pb2.Container | None:
        for container in (*self.pod.spec.init_containers, *self.pod.spec.containers):
            if container.name == name:
                return container
        return None

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Sync until the pod is finished with (deleted), or until cancelled.

        Cancelling leaves the containers as they are (an agent that stops does not stop
        its pods).
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for record in self._records.values():
                    if record.running:
                        self._watch(record, adopted=True)
                await self._remove_stale()
                resync_at = trio.current_time() + self.ctx.timings.resync
                while True:
                    self._dirty = trio.Event()
                    now = trio.current_time()
                    self._periodic = now >= resync_at
                    if self._periodic:
                        resync_at = now + self.ctx.timings.resync
                    self._wake_at = resync_at
                    try:
                        done = await self._sync()
                        self._error_retry = _ERROR_RETRY_INITIAL
                    except Exception as exc:
                        logger.exception("pod %s: sync failed", self.key)
                        self.ctx.events.event(
                            self.pod, "Warning", "FailedSync", f"error syncing pod: {exc!r}"
                        )
                        self._wake_at = trio.current_time() + self._error_retry
                        self._error_retry = min(self._error_retry * 2, _ERROR_RETRY_MAX)
                        done = False
                    self.syncs += 1
                    if done:
                        break
                    with trio.move_on_at(self._wake_at):
                        await self._dirty.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self.finished.set()

    def _wake_no_later_than(self, when: float) -> None:
        self._wake_at = min(self._wake_at, when)

    async def _sync(self) -> bool:
        """One pass; True once the pod is finished with."""
        pod = self.pod
        if self.removed or pod.metadata.HasField("deletion_timestamp"):
            return await self._terminate()
        if self.terminal:
            await self._finish()
            return False
        if not await self._prepare_pod():
            self._publish()
            return False
        policy = restart_policy(pod)
        inits = pod.spec.init_containers
        step = init_step(inits, self._records, policy)
        if step.action is not None:
            await self._apply(step.action)
        if step.passed == len(inits):
            for container in pod.spec.containers:
                action = app_action(self._records[container.name], container, policy)
                if action is not None:
                    await self._apply(action)
        if apps_finished(self._records, policy):
            if any(r.sidecar and r.running for r in self._records.values()):
                await self._stop_running(pod_grace(pod))
        else:
            for container in inits[: step.passed]:
                action = sidecar_action(self._records[container.name], container)
                if action is not None:
                    await self._apply(action)
        self._publish()
        return False

    async def _apply(self, action: Action) -> None:
        """Do what :mod:`.sequencing` decided for one container."""
        record = self._records[action.name]
        container = self._container(action.name)
        assert container is not None
        match action.verb:
            case Verb.START:
                await self._start(record, container)
            case Verb.RESTART:
                if action.fresh_backoff:
                    record.backoff = RestartBackoff(self.ctx.timings.backoff)
                await self._restart_with_backoff(record, container)
            case Verb.RECREATE:
                await self._recreate(record, container, action.message)
            case Verb.SETTLE:
                record.waiting = None

    async def _finish(self) -> None:
        """A terminal pod: stop what still runs (sidecars of a finished pod, everything
        of an evicted one), then give its address back."""
        if await self._stop_running(pod_grace(self.pod)):
            for record in self._records.values():
                record.waiting = None
            if not self.pod.spec.host_network:
                release_ip(self.ctx.ips, self.uid, key=self.key)
        self._publish()

    # ------------------------------------------------------------------ pod setup

    async def _prepare_pod(self) -> bool:
        """The pod's IP and volumes; False (and a waiting reason) when not ready yet."""
        pod = self.pod
        now = trio.current_time()
        try:
            if pod.spec.host_network:
                self._pod_ip = self.ctx.host_ip
            elif not self._pod_ip:
                self._pod_ip = self.ctx.ips.allocate(self.uid)
        except PodIPError as exc:
            self._set_pod_problem(
                Waiting("ContainerCreating", f"no pod IP: {exc}"), "FailedCreatePodSandBox"
            )
            self._wake_no_later_than(now + self.ctx.timings.config_retry)
            return False
        try:
            self._volume_paths = await self.ctx.volumes.setup(pod)
        except PodSetupError as exc:
            self._set_pod_problem(Waiting("ContainerCreating", str(exc)), exc.reason)
            self._wake_no_later_than(now + self.ctx.timings.config_retry)
            return False
        except OSError as exc:
            self._set_pod_problem(
                Waiting("ContainerCreating", f"setting up volumes: {exc}"), "FailedMount"
            )
            self._wake_no_later_than(now + self.ctx.timings.config_retry)
            return False
        self._pod_problem = None
        return True

    def _set_pod_problem(self, waiting: Waiting, event_reason: str) -> None:
        if waiting != self._pod_problem:
            self.ctx.events.event(self.pod, "Warning", event_reason, waiting.message)
        self._pod_problem = waiting

    # ------------------------------------------------------------------ attempts

    async def _recreate(
        self, record: ContainerRecord, container: core_pb2.Container, message: str
    ) -> None:
        """Stop the running attempt of ``record`` (preStop, grace of the pod) because its
        spec changed, and start the new spec at once (no backoff), whatever the restart
        policy -- the kubelet's reaction to a changed container hash."""
        assert record.container_id is not None
        self._event("Normal", "Killing", message)
        self._watchers.cancel(record.name)
        status = await lifecycle.stop(
            self.ctx.runtime,
            record,
            container,
            lifecycle.probe_context(self.ctx.runtime, record.container_id, container, self._pod_ip),
            deadline=trio.current_time() + pod_grace(self.pod),
            event=self._event,
        )
        if status is None:
            status = lost(record, record.container_id, "the container was gone when stopped")
        record.status = status
        record.ready = False
        record.hook_pending = False
        if status.running:
            logger.warning("pod %s: could not stop %s; will retry", self.key, record.name)
            self._watch(record)
            self._wake_no_later_than(trio.current_time() + 1)
            return
        record.exited_at = trio.current_time()
        record.backoff = RestartBackoff(self.ctx.timings.backoff)
        await self._restart_with_backoff(record, container)

    async def _restart_with_backoff(
        self, record: ContainerRecord, container: core_pb2.Container
    ) -> None:
        now = trio.current_time()
        exited_at = record.exited_at if record.exited_at is not None else now
        left = record.backoff.remaining(exited_at, now)
        if left > 0:
            message = (
                f"back-off {record.backoff.delay:g}s restarting failed container={record.name} "
                f"pod={self.pod.metadata.name}_{self.pod.metadata.namespace}({self.uid})"
            )
            if record.waiting is None or record.waiting.reason != CRASH_LOOP_BACK_OFF:
                self.ctx.events.event(
                    self.pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {record.name} in pod "
                    f"{self.pod.metadata.name}_{self.pod.metadata.namespace}({self.uid})",
                )
            record.waiting = Waiting(CRASH_LOOP_BACK_OFF, message)
            self._wake_no_later_than(now + left)
            return
        if record.retry_at is None:
            record.backoff.restarted(exited_at, now)
        await self._start(record, container)

    async def _start(self, record: ContainerRecord, container: core_pb2.Container) -> None:
        """Create and start the next attempt of ``record``'s container."""
        now = trio.current_time()
        if record.retry_at is not None and now < record.retry_at:
            self._wake_no_later_than(record.retry_at)
            return
        try:
            built = await build_container_spec(
                self.pod,
                container,
                init=record.init,
                attempt=record.attempt + 1,
                node_name=self.ctx.node_name,
                catalog=self.ctx.catalog,
                sources=self.ctx.sources,
                volume_paths=self._volume_paths,
                root_dir=self.ctx.volumes.container_root(self.uid, container.name),
                logs_dir=self.ctx.logs_dir,
                pod_ip=self._pod_ip,
                host_ip=self.ctx.host_ip,
                node_allocatable=self.ctx.node_allocatable,
            )
        except PodSetupError as exc:
            self._setup_failed(record, exc, now)
            return
        for warning in built.warnings:
            self.ctx.events.event(self.pod, "Warning", "InvalidEnvironmentVariableNames", warning)
        if self.terminal or self._stopper.stopping:
            return  # failed or stopping meanwhile (evicted while the spec was built)
        spec_hash = container_hash(container)
        spec = replace(built.spec, labels={**built.spec.labels, HASH_LABEL: spec_hash})
        stale = record.previous_id
        attempt = record.new_attempt()
        record.image = container.image
        record.spec_hash = spec_hash
        record.retry_at = None
        record.image_backoff = None
        record.waiting = None
        self.ctx.events.event(
            self.pod,
            "Normal",
            "Pulled",
            f'Container image "{container.image}" already present on machine',
        )
        try:
            container_id = await self.ctx.runtime.start(spec)
        except StartError as exc:
            self._start_failed(record, exc, now)
            return
        except ContainerExistsError as exc:
            logger.warning("pod %s: %s; trying the next attempt", self.key, exc)
            record.waiting = Waiting("CreateContainerError", str(exc))
            record.retry_at = now + 1.0
            self._wake_no_later_than(record.retry_at)
            return
        if stale is not None:
            self._stale.append(stale)
        record.container_id = container_id
        try:
            record.status = await self.ctx.runtime.status(container_id)
        except ContainerNotFoundError:
            record.status = None
        self.ctx.events.event(self.pod, "Normal", "Created", f"Created container {record.name}")
        self.ctx.events.event(self.pod, "Normal", "Started", f"Started container {record.name}")
        logger.debug(
            "pod %s: started %s attempt %d as %s", self.key, record.name, attempt, container_id
        )
        if record.status is not None and record.status.state is ContainerState.EXITED:
            record.exited_at = trio.current_time()  # already over: look again at once
            self.poke()
        else:
            if not record.init or record.sidecar:
                record.hook_pending, record.started, record.ready = lifecycle.initial_state(
                    container
                )
            self._watch(record)
        await self._remove_stale()

    def _setup_failed(self, record: ContainerRecord, exc: PodSetupError, now: float) -> None:
        reason = exc.reason
        retry = self.ctx.timings.config_retry
        if isinstance(exc, ImageNotFoundError):
            if record.image_backoff is None:
                record.image_backoff = RestartBackoff(self.ctx.timings.backoff)
            else:
                reason = IMAGE_PULL_BACK_OFF
            record.image_backoff.restarted(now, now)
            retry = record.image_backoff.delay
        waiting = Waiting(reason, str(exc))
        if waiting != record.waiting:
            message = str(exc)
            if isinstance(exc, ImageNotFoundError):
                message = f'Failed to pull image "{record.image}": {exc}'
            self.ctx.events.event(self.pod, "Warning", "Failed", f"Error: {message}")
        record.waiting = waiting
        record.retry_at = now + retry
        self._wake_no_later_than(record.retry_at)

    def _start_failed(self, record: ContainerRecord, exc: StartError, now: float) -> None:
        message = str(exc)
        record.status = ContainerStatus(
            id=ContainerId(""),
            state=ContainerState.EXITED,
            started_at=None,
            finished_at=_now(),
            exit_code=START_ERROR_EXIT_CODE,
            reason=exc.reason or START_ERROR,
            message=message,
        )
        record.exited_at = now
        self.ctx.events.event(self.pod, "Warning", "Failed", f"Error: {message}")
        self.poke()

    def _watch(self, record: ContainerRecord, *, adopted: bool = False) -> None:
        """Follow the running attempt of ``record`` until it exits (:mod:`.attempts`)."""
        assert self._nursery is not None
        self._watchers.watch(
            self._nursery,
            record,
            self._container(record.name),
            pod_ip=self._pod_ip,
            pod_grace=pod_grace(self.pod),
            adopted=adopted,
        )

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.ctx.events.event(self.pod, type_, reason, message)

    async def _remove_stale(self) -> None:
        await remove_containers(self.ctx.runtime, self._stale, key=self.key)

    # ------------------------------------------------------------------ status

    def _publish(self) -> None:
        pod = self.pod
        if self._keep_stored:
            return
        if self._rejected:
            rejected = rejected_status(pod, reason=self._reason, message=self._message)
            self.ctx.status.set(pod, rejected, force=self._periodic and pod.status != rejected)
            return
        initializing = not initialized(self._records)
        init_statuses: list[core_pb2.ContainerStatus] = []
        statuses: list[core_pb2.ContainerStatus] = []
        for record in self._records.values():
            if self._pod_problem is not None and record.status is None and record.waiting is None:
                rendered = render(
                    ContainerRecord(
                        name=record.name,
                        image=record.image,
                        init=record.init,
                        waiting=self._pod_problem,
                    ),
                    runtime=self.ctx.runtime.name,
                )
            else:
                rendered = render(record, runtime=self.ctx.runtime.name, initializing=initializing)
            (init_statuses if record.init else statuses).append(rendered)
        status = pod_status(
            pod,
            init_statuses=init_statuses,
            statuses=statuses,
            pod_ip=self._pod_ip,
            host_ip=self.ctx.host_ip,
            start_time=self._start_time,
            now=_now(),
            terminal=self.terminal,
            reason=self._reason,
            message=self._message,
            disruption=self._disruption,
            previous=self._last_status,
        )
        self._last_status = status
        if status.phase in TERMINAL_PHASES and not self.terminal:
            self._become_terminal(status.phase)
        # A periodic sync repairs a status someone else overwrote (the status manager
        # would otherwise drop it as already written).
        self.ctx.status.set(pod, status, force=self._periodic and pod.status != status)

    def _become_terminal(self, phase: str) -> None:
        """The pod finished: no container of it runs again; the next sync stops what
        still runs and releases its address (:meth:`_finish`)."""
        self.terminal = phase
        self._watchers.cancel_all()
        logger.info("pod %s: %s", self.key, phase)
        self.poke()

    # ------------------------------------------------------------------ deletion

    async def _stop_running(self, grace: float) -> bool:
        """Stop every running container (:meth:`.termination.Stopper.stop`), their
        probes and hooks first. True once nothing runs; False when it must be called
        again (the wake-up is set: at once when cut short by a shorter deadline, a
        second later when a container could not be stopped)."""
        if not self._stopper.stopping:
            self._watchers.cancel_all()
        outcome = await self._stopper.stop(
            self.records(), grace, container_of=self._container, pod_ip=self._pod_ip
        )
        if outcome is StopOutcome.CUT_SHORT:
            self._wake_no_later_than(trio.current_time())
        elif outcome is StopOutcome.STILL_RUNNING:
            self._wake_no_later_than(trio.current_time() + 1)
        return outcome is StopOutcome.STOPPED

    async def _terminate(self) -> bool:
        """The pod is being deleted: stop, clean up, delete the object; True once done."""
        grace = self.ctx.timings.force_grace if self.removed else deletion_grace(self.pod)
        if not await self._stop_running(grace):
            return False
        for record in self._records.values():
            record.waiting = None
        self._publish()
        await clean_up(self.ctx, self.pod, self._records.values(), self._stale, key=self.key)
        if not self.removed and not await delete_pod_object(self.ctx.api, self.pod, key=self.key):
            self._wake_no_later_than(trio.current_time() + 1)
            return False
        self.ctx.status.forget(self.uid)
        logger.info("pod %s: deleted", self.key)
        return True
