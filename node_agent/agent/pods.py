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

from node_agent.agent.context import PodContext
from node_agent.agent.lookup import ContainerRef
from node_agent.agent.podworker import PodWorker
from node_agent.network import PodIPError
from node_agent.runtime.base import ContainerInfo, ContainerRuntimeError
from node_agent.runtime.logs import container_log_dir, container_log_path, previous_attempt
from proto.k8s import core_pb2

__all__ = ["PodManager"]

logger = logging.getLogger(__name__)

_FINISHED_MEMORY = 10_000


class PodManager:
    """Routes pod events to per-pod workers; adopts and cleans up runtime containers."""

    def __init__(self, ctx: PodContext) -> None:
        self.ctx = ctx
        self._workers: dict[str, PodWorker] = {}
        self._by_key: dict[str, str] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._adopted: dict[str, list[ContainerInfo]] = {}
        self._pending: dict[str, core_pb2.Pod] = {}
        self._nursery: trio.Nursery | None = None
        self._synced = False

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Adopt the runtime's containers, then run the workers until cancelled.

        ``started()`` once adoption is done; pods handed in before that are held until then.
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
                pending, self._pending = self._pending, {}
                for pod in pending.values():
                    self.pod_changed(pod)
                if self._synced:
                    self._collect_orphans()
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    # ------------------------------------------------------------------ events

    def pod_changed(self, pod: core_pb2.Pod) -> None:
        """A pod of this node was added or changed (informer handler; never blocks)."""
        uid = pod.metadata.uid
        if pod.spec.node_name != self.ctx.node_name:
            self.pod_removed(pod)
            return
        if uid in self._finished:
            return
        if self._nursery is None:
            self._pending[uid] = pod
            return
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        previous = self._by_key.get(key)
        if previous is not None and previous in self._workers:
            self._workers[previous].remove()
        worker = PodWorker(self.ctx, pod, adopted=self._adopted.pop(uid, []))
        self._workers[uid] = worker
        self._by_key[key] = uid
        self._nursery.start_soon(self._run_worker, worker)

    def pod_removed(self, pod: core_pb2.Pod) -> None:
        """A pod left this node's view (deleted from the API server)."""
        uid = pod.metadata.uid
        self._pending.pop(uid, None)
        worker = self._workers.get(uid)
        if worker is not None:
            worker.remove()

    def synced(self) -> None:
        """The pod source has listed every pod of the node: the rest are orphans."""
        self._synced = True
        if self._nursery is not None:
            self._collect_orphans()

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
