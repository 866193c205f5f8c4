"""Evicting pods whose emptyDir volumes outgrow their ``sizeLimit`` (the kubelet's local
storage eviction, the emptyDir part).

The problem. A container cannot be stopped from writing into an emptyDir: without root
there is no tmpfs of a fixed size and no disk quota, and even Kubernetes does not cap a
disk-backed emptyDir at ``sizeLimit``. The kubelet's eviction manager instead measures
each emptyDir's usage every housekeeping period (10 s) and, when a volume uses more than
its ``sizeLimit``, evicts the pod: its containers are stopped for good and the pod ends
in phase ``Failed`` with reason ``Evicted`` and the message
``Usage of EmptyDir volume "cache" exceeds the limit "1Mi". `` (sic, with the trailing
space; the limit as the pod spells it). An evicted pod is not restarted; its controller
(ReplicaSet, Job, ...) replaces it.

The design. :class:`EvictionMonitor` is one task per node: every ``period`` seconds it
asks :attr:`~EvictionMonitor.pods` for the node's pods, skips those already finished,
being deleted or already evicted, and for each emptyDir with a ``sizeLimit`` asks the
volumes (:meth:`node_agent.pods.volumes.PodVolumes.emptydir_usage`, a ``du`` that does
not follow symlinks, stops once above the limit and gives up after a bounded number of
entries, in a worker thread) how much it uses. The first volume over its limit evicts
the pod through the ``evict(uid, reason, message)`` callback (the pod manager's). Usage
equal to the limit is not over it. A bad ``sizeLimit`` (the API server validates it, so
only an object written around it) is logged once and ignored, as is a volume that cannot
be measured; neither stops the monitor.

Guarantees: a pod is evicted at most once by a monitor (``evict`` returning False -- the
pod manager does not run that pod (yet) -- is retried next period); a pod that exceeds its limit is
evicted within one period plus the time to measure the node's limited emptyDirs (a
burst that is deleted again between two checks goes unnoticed, as in Kubernetes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import trio

from actors.apiserver.quantity import QuantityError, value
from proto.k8s import core_pb2

__all__ = [
    "DEFAULT_PERIOD",
    "EVICTED",
    "EmptyDirUsage",
    "EvictionMonitor",
    "Overuse",
    "emptydir_message",
    "size_limits",
]

logger = logging.getLogger(__name__)

DEFAULT_PERIOD = 10.0
"""Kubernetes' housekeeping period (``--housekeeping-interval``)."""

EVICTED = "Evicted"


class EmptyDirUsage(Protocol):
    """Measures a pod's emptyDir (:class:`~node_agent.pods.volumes.PodVolumes`)."""

    async def emptydir_usage(
        self, pod: core_pb2.Pod, name: str, *, stop_above: int | None = None
    ) -> int | None:
        """Bytes used (may stop counting above ``stop_above``); None: not set up."""
        ...


Evict = Callable[[str, str, str], bool]
"""``evict(uid, reason, message)``: fail the pod; False if the node runs no such pod."""


@dataclass(frozen=True)
class SizeLimit:
    volume: str
    limit: int
    text: str
    """The limit as the pod spells it (for the message)."""


@dataclass(frozen=True)
class Overuse:
    """A pod evicted because ``volume`` used ``used`` bytes, more than ``limit.text``."""

    uid: str
    pod: str
    volume: str
    used: int
    limit: str


def emptydir_message(volume: str, limit: str) -> str:
    """The kubelet's eviction message (``emptyDirMessageFmt``)."""
    return f'Usage of EmptyDir volume "{volume}" exceeds the limit "{limit}". '


def size_limits(pod: core_pb2.Pod) -> tuple[list[SizeLimit], list[str]]:
    """The emptyDirs of ``pod`` with a positive ``sizeLimit``, and what was wrong with any
    other ``sizeLimit``."""
    found, problems = [], []
    for volume in pod.spec.volumes:
        if not volume.HasField("empty_dir") or not volume.empty_dir.size_limit:
            continue
        text = volume.empty_dir.size_limit
        try:
            limit = value(text)
        except QuantityError as exc:
            problems.append(f'emptyDir volume "{volume.name}": sizeLimit: {exc}')
            continue
        if limit > 0:  # the kubelet ignores a zero (or negative) limit
            found.append(SizeLimit(volume.name, limit, text))
    return found, problems


class EvictionMonitor:
    """Evicts the node's pods whose emptyDirs exceed their ``sizeLimit``; see the module doc.

    ``pods`` returns the node's current pods; ``usage`` measures volumes; ``evict`` is
    called with ``(uid, "Evicted", message)``. ``evicted`` lists what it did, oldest first.
    """

    def __init__(
        self,
        *,
        pods: Callable[[], Iterable[core_pb2.Pod]],
        usage: EmptyDirUsage,
        evict: Evict,
        period: float = DEFAULT_PERIOD,
    ) -> None:
        if not period > 0:
            raise ValueError(f"the eviction period must be positive, got {period}")
        self.pods = pods
        self.usage = usage
        self.evict = evict
        self.period = period
        self.evicted: list[Overuse] = []
        self._done: set[str] = set()
        self._reported: set[tuple[str, str]] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check every ``period`` seconds until cancelled (the first check at once)."""
        task_status.started()
        while True:
            await self.check()
            await trio.sleep(self.period)

    async def check(self) -> list[Overuse]:
        """One round over the node's pods; the evictions it made."""
        pods = [p for p in self.pods() if _active(p)]
        current = {p.metadata.uid for p in pods}
        self._done &= current
        self._reported = {key for key in self._reported if key[0] in current}
        made = []
        for pod in pods:
            uid = pod.metadata.uid
            if uid in self._done:
                continue
            overuse = await self._over_limit(pod)
            if overuse is None:
                continue
            message = emptydir_message(overuse.volume, overuse.limit)
            if self.evict(uid, EVICTED, message):
                self._done.add(uid)
                logger.info(
                    "evicting pod %s (uid %s): emptyDir %s uses %d bytes, limit %s",
                    overuse.pod,
                    uid,
                    overuse.volume,
                    overuse.used,
                    overuse.limit,
                )
                self.evicted.append(overuse)
                made.append(overuse)
        return made

    async def _over_limit(self, pod: core_pb2.Pod) -> Overuse | None:
        limits, problems = size_limits(pod)
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        for problem in problems:
            if (pod.metadata.uid, problem) not in self._reported:
                self._reported.add((pod.metadata.uid, problem))
                logger.warning("pod %s: %s; not enforced", key, problem)
        for limit in limits:
            try:
                used = await self.usage.emptydir_usage(pod, limit.volume, stop_above=limit.limit)
            except OSError as exc:
                problem = f'measuring emptyDir volume "{limit.volume}": {exc}'
                if (pod.metadata.uid, problem) not in self._reported:
                    self._reported.add((pod.metadata.uid, problem))
                    logger.warning("pod %s: %s", key, problem)
                continue
            if used is not None and used > limit.limit:
                return Overuse(pod.metadata.uid, key, limit.volume, used, limit.text)
        return None


def _active(pod: core_pb2.Pod) -> bool:
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField(
        "deletion_timestamp"
    )
