"""The pod worker: one task per pod that converges its containers on the pod's spec.

The kubelet runs one goroutine per pod that serializes everything done to that pod;
this is the same, as a trio task (an actor). Inputs never block the caller: the pod
manager hands over a new version of the pod (:meth:`PodWorker.update`), says the pod is
gone from the API (:meth:`PodWorker.remove`), or that something the pod depends on
changed (:meth:`PodWorker.poke`); a container's exit or a probe's verdict arrives from a
task the worker owns. Each input only marks the worker dirty; the worker then runs one
**sync**: a level-triggered pass from the pod it knows and what the runtime reports to
the next actions, after which it writes the pod's status (through the coalescing status
manager) and sleeps until the next input or the next timer it set (a backoff ending, a
retry). Work for one pod is therefore never done twice at once, and a slow pod never
delays another.

One sync, for a pod that is not being deleted
    1. A terminal pod (Succeeded/Failed, from this worker or from the status it finds
       on the API server after a restart) is left alone: containers of a finished pod
       are never started again.
    2. The pod's IP (from the node's pod CIDR; ``hostNetwork`` pods use the node's) and
       volumes (set up on every sync, which also refreshes ConfigMap/Secret volumes).
    3. Init containers in order, one at a time, each to successful completion; a failed
       one is restarted (with backoff) unless ``restartPolicy`` is Never, which fails
       the pod.
    4. App containers: started when never started; when exited, restarted if the
       restart policy says so (Always; OnFailure after a non-zero exit), first at once,
       then after Kubernetes' CrashLoopBackOff (:mod:`.backoff`).
    5. The status: container statuses (:mod:`.containers`), phase and conditions
       (:mod:`.podstatus`).

Creating a container fails in ways users know by name (:mod:`.containerspec`):
``ErrImagePull`` then ``ImagePullBackOff``, ``CreateContainerConfigError`` (retried when
a ConfigMap or Secret changes, and every ``config_retry`` seconds), a runtime
``StartError`` (shown as a terminated attempt with exit code 128 and restarted like a
crash). Any other exception in a sync is a bug: it is logged, reported as a Warning
event on the pod, and the sync retried with backoff -- one bad pod never takes the
agent down.

Deletion (``deletionTimestamp`` set)
    Probes stop; every running container gets its preStop hook and SIGTERM, and SIGKILL
    when the grace period (``deletionGracePeriodSeconds``) ends; a shorter grace
    arriving meanwhile (or the pod vanishing from the API: force deletion) shortens it.
    Once no container runs, the worker removes the containers, releases the IP, deletes
    the volumes and logs, and deletes the Pod object with grace 0 and a uid
    precondition, so a new pod of the same name is never touched.

Re-adoption. A worker created with the containers the runtime already has for its pod
(after an agent restart) takes them over as they are: running ones keep running with
their restart counts, and exits that happened meanwhile go through the restart policy.
Cancelling a worker (the agent stops) never stops its containers.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import trio

from actors.client import ApiError, Conflict, NotFound
from node_agent.agent import lifecycle
from node_agent.agent.backoff import RestartBackoff
from node_agent.agent.containers import (
    CRASH_LOOP_BACK_OFF,
    IMAGE_PULL_BACK_OFF,
    START_ERROR,
    START_ERROR_EXIT_CODE,
    ContainerRecord,
    Waiting,
    render,
)
from node_agent.agent.containerspec import build_container_spec
from node_agent.agent.context import PodContext
from node_agent.agent.podstatus import TERMINAL_PHASES, pod_status
from node_agent.agent.probes import ProbeContext
from node_agent.network import PodIPError
from node_agent.pods.errors import ImageNotFoundError, PodSetupError
from node_agent.runtime.base import (
    ContainerExistsError,
    ContainerId,
    ContainerInfo,
    ContainerNotFoundError,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    StartError,
)
from node_agent.runtime.logs import container_log_dir
from proto.k8s import core_pb2

__all__ = ["PodWorker"]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30
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


def _should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


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
        self._dirty = trio.Event()
        self._records: dict[str, ContainerRecord] = {}
        self._stale: list[ContainerId] = []
        self._attempt_scopes: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._pod_ip = ctx.ips.lookup(self.uid) or ""
        self._pod_problem: Waiting | None = None
        self._start_time = _now()
        self._wake_at = math.inf
        self._kill_deadline: float | None = None
        self._kill_scope: trio.CancelScope | None = None
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
            for record in self._records.values():
                record.retry_at = None
        elif not _metadata_changed(old.metadata, pod.metadata):
            return  # only the status moved (most often: our own write coming back)
        if self._kill_deadline is not None and pod.metadata.HasField(
            "deletion_grace_period_seconds"
        ):
            deadline = trio.current_time() + max(0, pod.metadata.deletion_grace_period_seconds)
            if deadline < self._kill_deadline:
                self._kill_deadline = deadline
                if self._kill_scope is not None:
                    self._kill_scope.cancel()
        self.poke()

    def remove(self) -> None:
        """The pod is gone from the API server: stop its containers and clean up."""
        if not self.removed:
            self.removed = True
            deadline = trio.current_time() + self.ctx.timings.force_grace
            if self._kill_deadline is not None and deadline < self._kill_deadline:
                self._kill_deadline = deadline
                if self._kill_scope is not None:
                    self._kill_scope.cancel()
        self.poke()

    def poke(self) -> None:
        """Sync soon."""
        self._dirty.set()

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
            self._publish()
            return False
        if not await self._prepare_pod():
            self._publish()
            return False
        policy = pod.spec.restart_policy or "Always"
        initialized = await self._sync_init_containers(policy)
        if initialized:
            for container in pod.spec.containers:
                record = self._records[container.name]
                await self._sync_container(record, container, policy)
        self._publish()
        return False

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

    # ------------------------------------------------------------------ containers

    async def _sync_init_containers(self, policy: str) -> bool:
        """Advance the init containers; True once all completed."""
        if any(r.attempt >= 0 for r in self._records.values() if not r.init):
            return True  # app containers ran: initialization happened before
        for container in self.pod.spec.init_containers:
            record = self._records[container.name]
            if record.succeeded:
                continue
            if record.running:
                return False
            if record.exited:
                if policy == "Never":
                    record.waiting = None
                    return False  # the pod fails (pod_phase)
                await self._restart_with_backoff(record, container)
                return False
            await self._start(record, container)
            return False
        return True

    async def _sync_container(
        self, record: ContainerRecord, container: core_pb2.Container, policy: str
    ) -> None:
        if record.running:
            return
        if record.status is None:
            await self._start(record, container)
            return
        code = record.status.exit_code
        if _should_restart(policy, code):
            await self._restart_with_backoff(record, container)
        else:
            record.waiting = None

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
        stale = record.previous_id
        attempt = record.new_attempt()
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
            container_id = await self.ctx.runtime.start(built.spec)
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
            if not record.init:
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
        """Follow the running attempt of ``record`` until it exits, with its hooks and
        probes (:mod:`.lifecycle`), in a scope of its own."""
        assert self._nursery is not None
        container_id = record.container_id
        assert container_id is not None
        old = self._attempt_scopes.pop(record.name, None)
        if old is not None:
            old.cancel()
        scope = trio.CancelScope()
        self._attempt_scopes[record.name] = scope
        container = self._container(record.name)

        async def watch(done: trio.CancelScope) -> None:
            try:
                status = await self.ctx.runtime.wait(container_id)
            except ContainerRuntimeError as exc:
                logger.warning("pod %s: lost container %s: %s", self.key, container_id, exc)
                status = ContainerStatus(
                    id=container_id,
                    state=ContainerState.EXITED,
                    started_at=record.status.started_at if record.status else None,
                    finished_at=_now(),
                    exit_code=137,
                    reason="ContainerStatusUnknown",
                    message=str(exc),
                )
            if record.container_id == container_id:
                record.status = status
                record.exited_at = trio.current_time()
                record.ready = False
                record.hook_pending = False
                self.poke()
            done.cancel()

        async def attempt() -> None:
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch, nursery.cancel_scope)
                    if container is not None and not record.init:
                        nursery.start_soon(
                            partial(
                                lifecycle.supervise,
                                self.ctx.runtime,
                                record,
                                container,
                                self._probe_context(record, container),
                                adopted=adopted,
                                pod_grace=self._pod_grace(),
                                changed=self.poke,
                                event=self._event,
                            )
                        )

        self._nursery.start_soon(attempt)

    def _probe_context(
        self, record: ContainerRecord, container: core_pb2.Container
    ) -> ProbeContext:
        assert record.container_id is not None
        return lifecycle.probe_context(
            self.ctx.runtime, record.container_id, container, self._pod_ip
        )

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.ctx.events.event(self.pod, type_, reason, message)

    def _pod_grace(self) -> float:
        spec = self.pod.spec
        if spec.HasField("termination_grace_period_seconds"):
            return float(max(0, spec.termination_grace_period_seconds))
        return float(DEFAULT_GRACE_SECONDS)

    async def _remove_stale(self) -> None:
        while self._stale:
            container_id = self._stale.pop()
            try:
                await self.ctx.runtime.remove(container_id)
            except ContainerRuntimeError as exc:
                logger.debug("pod %s: removing old container %s: %s", self.key, container_id, exc)

    # ------------------------------------------------------------------ status

    def _publish(self) -> None:
        pod = self.pod
        initializing = not self._initialized()
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
            previous=self._last_status,
        )
        self._last_status = status
        if status.phase in TERMINAL_PHASES and not self.terminal:
            self._become_terminal(status.phase)
        # A periodic sync repairs a status someone else overwrote (the status manager
        # would otherwise drop it as already written).
        self.ctx.status.set(pod, status, force=self._periodic and pod.status != status)

    def _initialized(self) -> bool:
        if any(r.attempt >= 0 for r in self._records.values() if not r.init):
            return True
        return all(r.succeeded for r in self._records.values() if r.init)

    def _become_terminal(self, phase: str) -> None:
        """The pod finished: no container of it runs again; its address is released."""
        self.terminal = phase
        for scope in self._attempt_scopes.values():
            scope.cancel()
        self._attempt_scopes.clear()
        if not self.pod.spec.host_network:
            self._release_ip()
        logger.info("pod %s: %s", self.key, phase)

    def _release_ip(self) -> None:
        try:
            self.ctx.ips.release(self.uid)
        except PodIPError as exc:
            logger.warning("pod %s: releasing its IP: %s", self.key, exc)

    # ------------------------------------------------------------------ deletion

    def _grace(self) -> float:
        meta, spec = self.pod.metadata, self.pod.spec
        if meta.HasField("deletion_grace_period_seconds"):
            return max(0, meta.deletion_grace_period_seconds)
        if spec.HasField("termination_grace_period_seconds"):
            return max(0, spec.termination_grace_period_seconds)
        return DEFAULT_GRACE_SECONDS

    async def _terminate(self) -> bool:
        now = trio.current_time()
        if self._kill_deadline is None:
            grace = self.ctx.timings.force_grace if self.removed else self._grace()
            self._kill_deadline = now + grace
            for scope in self._attempt_scopes.values():
                scope.cancel()
            self._attempt_scopes.clear()
            for record in self._records.values():
                if record.running:
                    self.ctx.events.event(
                        self.pod, "Normal", "Killing", f"Stopping container {record.name}"
                    )
        running = [r for r in self._records.values() if r.running]
        if running:
            with trio.CancelScope() as scope:
                self._kill_scope = scope
                async with trio.open_nursery() as nursery:
                    for record in running:
                        nursery.start_soon(self._kill, record)
            self._kill_scope = None
            if scope.cancelled_caught or any(r.running for r in self._records.values()):
                self._wake_no_later_than(trio.current_time() + (0 if scope.cancelled_caught else 1))
                return False
        for record in self._records.values():
            record.waiting = None
        self._publish()
        await self._clean_up()
        if not self.removed:
            meta = self.pod.metadata
            try:
                await self.ctx.api.delete(
                    "Pod", meta.name, namespace=meta.namespace, grace_period_seconds=0, uid=self.uid
                )
            except (NotFound, Conflict):
                pass
            except ApiError as exc:
                logger.warning("pod %s: deleting it: %s (will retry)", self.key, exc)
                self._wake_no_later_than(trio.current_time() + 1)
                return False
        self.ctx.status.forget(self.uid)
        logger.info("pod %s: deleted", self.key)
        return True

    async def _kill(self, record: ContainerRecord) -> None:
        """preStop, SIGTERM, SIGKILL at the deletion deadline (:func:`.lifecycle.stop`)."""
        assert record.container_id is not None and self._kill_deadline is not None
        container = self._container(record.name)
        ctx = None if container is None else self._probe_context(record, container)
        record.status = await lifecycle.stop(
            self.ctx.runtime,
            record,
            container,
            ctx,
            deadline=self._kill_deadline,
            event=self._event,
        )
        if not record.running:
            record.exited_at = trio.current_time()
            record.ready = False

    async def _clean_up(self) -> None:
        for record in self._records.values():
            for container_id in (record.container_id, record.previous_id):
                if container_id:
                    self._stale.append(container_id)
        await self._remove_stale()
        self._release_ip()
        meta = self.pod.metadata
        try:
            self.ctx.volumes.teardown(self.uid)
        except OSError as exc:
            logger.warning("pod %s: removing its volumes: %s", self.key, exc)
        pod_logs = container_log_dir(
            self.ctx.logs_dir, meta.namespace, meta.name, self.uid, "x"
        ).parent
        shutil.rmtree(pod_logs, ignore_errors=True)
