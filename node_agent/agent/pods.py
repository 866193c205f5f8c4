"""The pod manager: the node's pods, one worker each, and the containers nobody owns.

The pod manager sits between the pods informer and the pod workers
(:mod:`.podworker`). Its handlers only route: a pod seen for the first time gets a
worker (keyed by uid, since a pod deleted and created again under the same name is
another pod); a newer version goes to its worker; a pod that vanished from the API
tells its worker so. Everything else happens in the workers.

Restart and re-adoption. Before any worker exists, :meth:`PodManager.run` lists the
runtime's containers and groups them by pod uid; the first worker of a pod receives the
containers that are its own and carries on with them. Once the pod source has listed
every pod of the node (:meth:`PodManager.synced`), containers whose pod is not among
them are **orphans** (their pod was deleted while the agent was down): they are stopped
(``orphan_grace``) and removed, with their IPs, volumes and logs. Pod IPs held by no
known pod are released too.

Admission. A pod seen for the first time is admitted once (per uid) before it gets a
worker, as the kubelet's ``HandlePodAdditions`` does: the node runs at most
``status.allocatable.pods`` (:attr:`PodContext.node_allocatable`) pods that are not
finished. A pod over that count is rejected -- phase ``Failed``, reason ``OutOfpods``,
message ``Pod was rejected: Node didn't have enough resource: pods, requested: 1, used:
N, capacity: N`` and a Warning event -- and none of its containers ever starts
(:meth:`PodWorker.reject`); its object stays until deleted, like any finished pod.
Pods are admitted in batches in a deterministic order -- those whose containers the
runtime already runs (re-adopted after an agent restart; always admitted, so a restart
never kills a running pod), then by creation time -- so of two pods racing for the last
slot the older wins, whatever order the watch delivered them in. Nothing is admitted
before the pod source has listed every pod of the node (:meth:`PodManager.synced`), so
the first batch after a restart is the whole node. Pods already finished or being
deleted are not subject to admission.

Eviction. :meth:`PodManager.evict` fails a running pod for a node-level reason (the
eviction monitor's ``Evicted``) through its worker (:meth:`PodWorker.evict`).

Finished pods. When a worker finishes (its pod deleted), its uid is remembered for a
while, so that a late watch event about the deleted pod does not start a new worker.

The manager also serves the node agent's API (logs, exec, top) through the
:class:`~node_agent.agent.lookup.ContainerLookup` protocol: :meth:`find`,
:meth:`default_container`, :meth:`pods`, :meth:`containers`.
"""

from __future__ import annotations

import logging
import shutil
from collections import OrderedDict
from collections.abc import Iterable

import trio

from actors.apiserver.quantity import QuantityError, value
from node_agent.agent.context import PodContext
from node_agent.agent.lookup import ContainerRef
from node_agent.agent.podstatus import TERMINAL_PHASES
from node_agent.agent.podworker import PodWorker
from node_agent.network import PodIPError
from node_agent.runtime.base import ContainerInfo, ContainerRuntimeError
from node_agent.runtime.logs import container_log_dir, container_log_path, previous_attempt
from proto.k8s import core_pb2

__all__ = ["OUT_OF_PODS", "PodManager"]

logger = logging.getLogger(__name__)

_FINISHED_MEMORY = 10_000
OUT_OF_PODS = "OutOfpods"
"""The kubelet's reason for a pod rejected because the node runs its maximum of pods."""


def _admission_order(pod: core_pb2.Pod) -> tuple[int, int, str, str, str]:
    meta = pod.metadata
    created = meta.creation_timestamp
    return (created.seconds, created.nanos, meta.namespace, meta.name, meta.uid)


def _exempt(pod: core_pb2.Pod) -> bool:
    """A pod that is already finished or being deleted takes no slot to admit."""
    return pod.status.phase in TERMINAL_PHASES or pod.metadata.HasField("deletion_timestamp")


class PodManager:
    """Routes pod events to per-pod workers; adopts and cleans up runtime containers."""

    def __init__(self, ctx: PodContext) -> None:
        self.ctx = ctx
        self._workers: dict[str, PodWorker] = {}
        self._by_key: dict[str, str] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._adopted: dict[str, list[ContainerInfo]] = {}
        self._to_admit: dict[str, core_pb2.Pod] = {}
        """New pods (by uid) waiting for the next admission batch."""
        self._admit_wanted = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._synced = False

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Adopt the runtime's containers, then run the workers until cancelled.

        ``started()`` once adoption is done; pods handed in before that (and before the
        pod source synced) are held, then admitted together.
        """
        for info in await self.ctx.runtime.containers():
            self._adopted.setdefault(info.spec.pod_uid, []).append(info)
        if self._adopted:
            logger.info(
                "found %d container(s) of %d pod(s) in the runtime",
                sum(len(v) for v in self._adopted.values()),
                len(self._adopted),
            )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                if self._synced:
                    self._admit_pending()
                    self._collect_orphans()
                task_status.started()
                await self._admit_batches()
            finally:
                self._nursery = None

    async def _admit_batches(self) -> None:
        """Admit new pods in batches: those that arrive together are ordered together."""
        while True:
            await self._admit_wanted.wait()
            self._admit_wanted = trio.Event()
            await trio.lowlevel.checkpoint()  # let events delivered together all arrive
            self._admit_pending()

    # ------------------------------------------------------------------ events

    def pod_changed(self, pod: core_pb2.Pod) -> None:
        """A pod of this node was added or changed (informer handler; never blocks)."""
        uid = pod.metadata.uid
        if pod.spec.node_name != self.ctx.node_name:
            self.pod_removed(pod)
            return
        if uid in self._finished:
            return
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        self._to_admit[uid] = pod
        if self._nursery is not None and self._synced:
            self._admit_wanted.set()

    def pod_removed(self, pod: core_pb2.Pod) -> None:
        """A pod left this node's view (deleted from the API server)."""
        uid = pod.metadata.uid
        self._to_admit.pop(uid, None)
        worker = self._workers.get(uid)
        if worker is not None:
            worker.remove()

    def synced(self) -> None:
        """The pod source has listed every pod of the node: admit them; containers of
        pods not among them are orphans."""
        if self._synced:
            return
        self._synced = True
        if self._nursery is not None:
            self._admit_pending()
            self._collect_orphans()

    def evict(self, uid: str, reason: str, message: str) -> bool:
        """Fail the pod ``uid`` for ``reason`` (e.g. ``Evicted``), stopping its
        containers for good (:meth:`PodWorker.evict`); False when this node runs no such
        pod, or it is already finished or being deleted."""
        worker = self._workers.get(uid)
        return worker is not None and worker.evict(reason, message)

    def poke_namespace(self, namespace: str) -> None:
        """Something pods of ``namespace`` may depend on changed (a ConfigMap, a Secret)."""
        for worker in list(self._workers.values()):
            if worker.pod.metadata.namespace == namespace:
                worker.inputs_changed()

    # ------------------------------------------------------------------ views

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        uid = self._by_key.get(f"{namespace}/{name}")
        return None if uid is None else self._workers.get(uid)

    def workers(self) -> list[PodWorker]:
        return list(self._workers.values())

    def __len__(self) -> int:
        return len(self._workers)

    # ------------------------------------------------------------------ ContainerLookup

    def find(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> ContainerRef | None:
        """The current (or previous) instance of ``container`` of pod ``namespace/pod``."""
        worker = self.worker(namespace, pod)
        record = None if worker is None else worker.record(container)
        if worker is None or record is None:
            return None
        meta = worker.pod.metadata
        directory = container_log_dir(
            self.ctx.logs_dir, meta.namespace, meta.name, meta.uid, container
        )
        if previous:
            attempt = previous_attempt(directory, record.attempt) if record.attempt > 0 else None
            if attempt is None:
                return ContainerRef(container_id=None, log_path=None, running=False)
            return ContainerRef(
                container_id=record.previous_id if attempt == record.attempt - 1 else None,
                log_path=directory / f"{attempt}.log",
                running=False,
            )
        if record.attempt < 0:
            return ContainerRef(container_id=None, log_path=None, running=False)
        return ContainerRef(
            container_id=record.container_id,
            log_path=container_log_path(
                self.ctx.logs_dir, meta.namespace, meta.name, meta.uid, container, record.attempt
            ),
            running=record.running,
        )

    def default_container(self, namespace: str, pod: str) -> str | None:
        worker = self.worker(namespace, pod)
        if worker is None or not worker.pod.spec.containers:
            return None
        return worker.pod.spec.containers[0].name

    def pods(self) -> list[tuple[str, str]]:
        return sorted(
            (w.pod.metadata.namespace, w.pod.metadata.name) for w in self._workers.values()
        )

    def containers(self, namespace: str, pod: str) -> list[tuple[str, ContainerRef]]:
        worker = self.worker(namespace, pod)
        if worker is None:
            return []
        out = []
        for record in worker.records():
            ref = self.find(namespace, pod, record.name)
            if ref is not None:
                out.append((record.name, ref))
        return out

    # ------------------------------------------------------------------ admission

    def _pod_capacity(self) -> int | None:
        text = self.ctx.node_allocatable.get("pods")
        if text is None:
            return None
        try:
            return value(text)
        except QuantityError:
            logger.warning("allocatable pods %r is not a quantity: admitting every pod", text)
            return None

    def _admit_pending(self) -> None:
        """Give every pod waiting for admission a worker, in admission order (module
        docstring); pods over the node's pod capacity get one that rejects them."""
        pending = sorted(
            self._to_admit.values(),
            key=lambda p: (p.metadata.uid not in self._adopted, _admission_order(p)),
        )
        self._to_admit = {}
        capacity = self._pod_capacity()
        for pod in pending:
            uid = pod.metadata.uid
            adopted = self._adopted.pop(uid, [])
            rejection = None
            if capacity is not None and not adopted and not _exempt(pod):
                used = sum(1 for w in self._workers.values() if not w.terminal)
                if used + 1 > capacity:
                    rejection = (
                        f"Node didn't have enough resource: pods, requested: 1, used: {used}, "
                        f"capacity: {capacity}"
                    )
            self._start_worker(pod, adopted, rejection)

    def _start_worker(
        self, pod: core_pb2.Pod, adopted: list[ContainerInfo], rejection: str | None
    ) -> None:
        assert self._nursery is not None
        uid = pod.metadata.uid
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        previous = self._by_key.get(key)
        if previous is not None and previous in self._workers:
            self._workers[previous].remove()
        worker = PodWorker(self.ctx, pod, adopted=adopted)
        if rejection is not None:
            worker.reject(OUT_OF_PODS, rejection)
        self._workers[uid] = worker
        self._by_key[key] = uid
        self._nursery.start_soon(self._run_worker, worker)

    # ------------------------------------------------------------------ internals

    async def _run_worker(self, worker: PodWorker) -> None:
        uid = worker.uid
        try:
            await worker.run()
        finally:
            if self._workers.get(uid) is worker:
                del self._workers[uid]
                key = worker.key
                if self._by_key.get(key) == uid:
                    del self._by_key[key]
            if worker.removed or worker.pod.metadata.HasField("deletion_timestamp"):
                self._finished[uid] = None
                while len(self._finished) > _FINISHED_MEMORY:
                    self._finished.popitem(last=False)

    def _collect_orphans(self) -> None:
        assert self._nursery is not None
        orphans, self._adopted = self._adopted, {}
        for uid, infos in orphans.items():
            self._nursery.start_soon(self._clean_orphan, uid, infos)
        known = set(self._workers) | set(orphans)
        for uid in set(self.ctx.ips.allocations()) - known:
            try:
                self.ctx.ips.release(uid)
            except PodIPError as exc:
                logger.warning("releasing the IP of unknown pod %s: %s", uid, exc)

    async def _clean_orphan(self, uid: str, infos: Iterable[ContainerInfo]) -> None:
        infos = list(infos)
        first = infos[0].spec
        logger.info(
            "pod %s/%s (uid %s) is gone: stopping and removing its %d container(s)",
            first.pod_namespace,
            first.pod_name,
            uid,
            len(infos),
        )
        runtime = self.ctx.runtime
        async with trio.open_nursery() as nursery:
            for info in infos:
                if info.status.running:
                    nursery.start_soon(self._stop_quietly, info)
        for info in infos:
            try:
                await runtime.remove(info.id)
            except ContainerRuntimeError as exc:
                logger.warning("removing orphaned container %s: %s", info.id, exc)
        try:
            self.ctx.ips.release(uid)
        except PodIPError as exc:
            logger.warning("releasing the IP of orphaned pod %s: %s", uid, exc)
        try:
            self.ctx.volumes.teardown(uid)
        except OSError as exc:
            logger.warning("removing the volumes of orphaned pod %s: %s", uid, exc)
        logs = container_log_dir(
            self.ctx.logs_dir, first.pod_namespace, first.pod_name, uid, "x"
        ).parent
        shutil.rmtree(logs, ignore_errors=True)

    async def _stop_quietly(self, info: ContainerInfo) -> None:
        try:
            await self.ctx.runtime.stop(info.id, grace=self.ctx.timings.orphan_grace)
        except ContainerRuntimeError as exc:
            logger.warning("stopping orphaned container %s: %s", info.id, exc)
