"""The DaemonSet controller's reconcile: one pod per eligible node, rolled node by node.

One pass over a DaemonSet key, as Kubernetes' ``syncDaemonSet``:

1. Claim its pods (:func:`~.podcontrol.claim`: adopt matching orphans, release pods
   that stopped matching) and group them by node (``spec.nodeName``, else the node its
   required ``metadata.name`` affinity names).
2. **Manage** (if the expectations of the last pass are met and the DaemonSet is not
   being deleted), node by node, from :func:`~.placement.placement`:

   * should run, no pod: create one;
   * may stay: delete Succeeded pods, and Failed ones (with a per-node backoff of 1 s
     doubling to 15 min, ``FailedDaemonPod`` Warning, so a node that keeps failing its
     pod does not make the controller spin); with more than one pod, keep the oldest;
   * may not stay: delete its pods;
   * pods on nodes that no longer exist (the cache says so and a read from the API
     server confirms it) are deleted at once, with grace 0: no node agent is left to stop
     them -- Kubernetes leaves this to its pod garbage collector.

3. **Update** (``RollingUpdate``, once the expectations are met again): pods whose
   ``controller-revision-hash`` label is not the template's current hash are deleted --
   unavailable ones at once, available ones only while fewer than ``maxUnavailable``
   (an int or a percentage of the desired count, rounded up; default 1) daemon pods are
   unavailable. The manage step then creates the new pod on the emptied node. With
   ``OnDelete`` old pods stay until someone deletes them.
4. **Status**: ``desiredNumberScheduled``, ``currentNumberScheduled``,
   ``numberMisscheduled``, ``numberReady``, ``numberAvailable``, ``numberUnavailable``,
   ``updatedNumberScheduled``, ``observedGeneration`` -- written only when changed. While
   a ready pod waits out ``minReadySeconds`` the key is looked at again then.

Placement: each pod is created with ``spec.nodeName`` set to its node (bound directly,
no scheduler involved) *and* with its required node affinity narrowed to that node's
``metadata.name``, as Kubernetes writes it -- so the pod says where it belongs either
way. The hash is FNV-1a of the template's deterministic serialization, encoded like
Kubernetes' pod-template-hash; pods also get ``pod-template-generation``.
``maxSurge`` is not implemented: a rolling update always deletes before it creates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trio

from actors.client import ApiError, Conflict, NotFound
from actors.controller import (
    NORMAL,
    WARNING,
    Controller,
    Handlers,
    Informer,
    PermanentError,
    TransientError,
)
from actors.controller.cache import object_key

from .. import podcontrol
from ..context import ControllerContext
from .placement import daemon_tolerations, placement

__all__ = [
    "HASH_LABEL",
    "TEMPLATE_GENERATION_LABEL",
    "DaemonSetController",
    "max_unavailable",
    "new_controller",
    "template_hash",
]

logger = logging.getLogger(__name__)

KIND = "DaemonSet"
HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
FAILED_POD_BACKOFF = (1.0, 900.0)
"""Initial and longest wait before deleting a node's failed daemon pod again."""
CONCURRENCY = 16
_SAFE = "bcdfghjklmnpqrstvwxz2456789"

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def template_hash(template: Any) -> str:
    """A short, stable name for a pod template (what ``controller-revision-hash`` holds)."""
    value = 0x811C9DC5
    for byte in template.SerializeToString(deterministic=True):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[b % len(_SAFE)] for b in str(value).encode())


def max_unavailable(ds: Any, desired: int) -> int:
    """``maxUnavailable`` of a RollingUpdate as a number of pods: a percentage of
    ``desired`` rounded up; at least 1 when anything is desired (Kubernetes never lets a
    rollout stall at 0)."""
    value = ds.spec.update_strategy.rolling_update.max_unavailable
    kind = value.WhichOneof("value")
    if kind == "str_val":
        text = value.str_val.strip()
        if not text.endswith("%") or not text[:-1].isdigit():
            raise PermanentError(
                f"spec.updateStrategy.rollingUpdate.maxUnavailable: {text!r} is neither "
                f"a number nor a percentage",
                reason="InvalidUpdateStrategy",
            )
        count = math.ceil(int(text[:-1]) * desired / 100)
    elif kind == "int_val":
        count = value.int_val
    else:
        count = 1
    return max(count, 1) if desired > 0 else count


def _pod_node(pod: Any) -> str:
    """The node a daemon pod is for: its nodeName, else its required name affinity."""
    if pod.spec.node_name:
        return str(pod.spec.node_name)
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for term in required.node_selector_terms:
        for req in term.match_fields:
            if req.key == "metadata.name" and req.operator == "In" and len(req.values) == 1:
                return str(req.values[0])
    return ""


def _created(pod: Any) -> tuple[float, str]:
    stamp = pod.metadata.creation_timestamp
    return (stamp.seconds + stamp.nanos / 1e9, pod.metadata.name)


def _oldest_first(pods: Sequence[Any]) -> list[Any]:
    # Kubernetes' podByCreationTimestampAndPhase: Running before others, then oldest.
    return sorted(pods, key=lambda p: (p.status.phase != "Running", *_created(p)))


@dataclass
class _Backoff:
    delay: float
    since: float


class DaemonSetController(Controller):
    """The ``daemonset`` loop (see the module doc); :attr:`expectations` for tests."""

    def __init__(self, ctx: ControllerContext, *, clock: Clock = _utc_now) -> None:
        self.api = ctx.api
        self.clock = clock
        self.ds_informer: Informer = ctx.informers.informer(KIND)
        self.pod_informer: Informer = ctx.informers.informer("Pod")
        self.node_informer: Informer = ctx.informers.informer("Node")
        self.expectations = podcontrol.Expectations()
        super().__init__(
            "daemonset",
            self.reconcile_key,
            workers=ctx.options.workers,
            recorder=ctx.recorder,
            subject=self.ds_informer,
        )
        self.ds_informer.add_handler(
            Handlers(on_delete=lambda ds: self.expectations.forget(object_key(ds)))
        )
        self.pod_informer.add_handler(
            Handlers(
                on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
            )
        )
        self.node_informer.add_handler(
            Handlers(
                on_add=lambda node: self._enqueue_all(),
                on_update=self._node_updated,
                on_delete=lambda node: self._enqueue_all(),
            )
        )
        self.depends_on([self.pod_informer, self.node_informer])
        self._failed_backoff: dict[tuple[str, str], _Backoff] = {}
        self._written: dict[str, int] = {}

    # ------------------------------------------------------------------ handlers

    def _enqueue_all(self) -> None:
        for ds in self.ds_informer.cache:
            self.enqueue(object_key(ds))

    def _node_updated(self, old: Any, new: Any) -> None:
        # Heartbeats change only the status: placement depends on labels and taints.
        if old.metadata.labels != new.metadata.labels or old.spec != new.spec:
            self._enqueue_all()

    def _owner(self, pod: Any) -> Any | None:
        ref = podcontrol.controller_of(pod)
        if ref is None or ref.kind != KIND:
            return None
        ds = self.ds_informer.cache.get_by_name(pod.metadata.namespace, ref.name)
        if ds is None or ds.metadata.uid != ref.uid:
            return None
        return ds

    def _pod_added(self, pod: Any) -> None:
        ds = self._owner(pod)
        if ds is None:
            return
        key = object_key(ds)
        if pod.metadata.HasField("deletion_timestamp"):
            self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
        else:
            self.expectations.creation_observed(key)
        self.enqueue(key)

    def _pod_updated(self, old: Any, new: Any) -> None:
        ds = self._owner(new)
        if ds is None:
            return
        key = object_key(ds)
        if new.metadata.HasField("deletion_timestamp"):
            self.expectations.deletion_observed(key, podcontrol.pod_key(new))
        self.enqueue(key)

    def _pod_deleted(self, pod: Any) -> None:
        ds = self._owner(pod)
        if ds is None:
            return
        key = object_key(ds)
        self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
        self.enqueue(key)

    def _event(self, ds: Any, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(ds, type_, reason, message)

    # ------------------------------------------------------------------ reconcile

    async def reconcile_key(self, key: str) -> float | None:
        ds = self.ds_informer.cache.get(key)
        if ds is None:
            self.expectations.forget(key)
            self._written.pop(key, None)
            for backoff_key in [k for k in self._failed_backoff if k[0] == key]:
                del self._failed_backoff[backoff_key]
            return None
        if int(ds.metadata.resource_version or 0) < self._written.get(key, 0):
            return None  # our newer status is on its way to the cache, and re-enqueues
        selector = ds.spec.selector
        if not (selector.match_labels or selector.match_expressions):
            raise PermanentError(
                "spec.selector is empty; a DaemonSet must select its pods",
                reason="SelectingAll",
            )
        now = self.clock()
        nodes = {n.metadata.name: n for n in self.node_informer.cache}
        try:
            claimed = await podcontrol.claim(
                self.api, ds, selector, self.pod_informer.cache.list(ds.metadata.namespace)
            )
        except ValueError as exc:
            raise PermanentError(str(exc), reason="InvalidSelector") from exc
        pods = claimed.owned
        current = template_hash(ds.spec.template)
        again: list[float] = []
        error: str | None = None
        if not ds.metadata.HasField("deletion_timestamp") and self.expectations.satisfied(key):
            error, wait = await self._manage(key, ds, nodes, pods, current)
            if wait is not None:
                again.append(wait)
            if (
                error is None
                and ds.spec.update_strategy.type in ("", "RollingUpdate")
                and self.expectations.satisfied(key)
            ):
                error = await self._rolling_update(key, ds, nodes, pods, current, now)
        wait = await self._write_status(key, ds, nodes, pods, current, now)
        if wait is not None:
            again.append(wait)
        if error is not None:
            raise TransientError(error)
        return min(again) if again else None

    def _by_node(self, pods: Sequence[Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for pod in pods:
            out.setdefault(_pod_node(pod), []).append(pod)
        return out

    async def _manage(
        self, key: str, ds: Any, nodes: dict[str, Any], pods: list[Any], current: str
    ) -> tuple[str | None, float | None]:
        """Step 2 of the module doc; ``(first error, seconds to wait for a backoff)``."""
        by_node = self._by_node(pods)
        create_on: list[str] = []
        delete: list[Any] = []
        force: list[Any] = []
        waits: list[float] = []
        clock = trio.current_time()
        for name, node in sorted(nodes.items()):
            there = by_node.get(name, [])
            place = placement(ds.spec.template.spec, node)
            if place.should_run and not there:
                create_on.append(name)
            elif place.should_continue_running:
                alive = []
                for pod in there:
                    if pod.metadata.HasField("deletion_timestamp"):
                        continue
                    if pod.status.phase == "Failed":
                        wait = self._failed_wait((key, name), clock)
                        if wait > 0:
                            waits.append(wait)
                            continue
                        self._event(
                            ds,
                            WARNING,
                            "FailedDaemonPod",
                            f"Found failed daemon pod {pod.metadata.namespace}/"
                            f"{pod.metadata.name} on node {name}, will try to kill it",
                        )
                        delete.append(pod)
                    elif pod.status.phase == "Succeeded":
                        delete.append(pod)
                    else:
                        alive.append(pod)
                delete.extend(_oldest_first(alive)[1:])
            else:
                delete.extend(p for p in there if not p.metadata.HasField("deletion_timestamp"))
        for name, there in by_node.items():
            if name and name not in nodes and await self._node_gone(name):
                force.extend(there)
        create_on = create_on[: podcontrol.BURST_REPLICAS]
        victims = (delete + force)[: podcontrol.BURST_REPLICAS]
        error = None
        if victims:
            error = await self._delete(key, ds, victims, force={p.metadata.uid for p in force})
        if create_on:
            error = await self._create(key, ds, create_on, current) or error
        return error, (min(waits) if waits else None)

    async def _node_gone(self, name: str) -> bool:
        """Whether node ``name`` is really gone (asked of the API server: the node cache
        may simply not have seen a new node yet)."""
        try:
            await self.api.get("Node", name)
        except NotFound:
            return True
        except ApiError as exc:
            raise TransientError(f"could not look up node {name}: {exc}") from exc
        return False

    def _failed_wait(self, backoff_key: tuple[str, str], clock: float) -> float:
        """Seconds before the failed pod of ``backoff_key`` may be deleted (0: now, and
        the next failure waits twice as long)."""
        initial, longest = FAILED_POD_BACKOFF
        entry = self._failed_backoff.get(backoff_key)
        if entry is not None and clock - entry.since > 2 * longest:
            entry = None  # quiet for long enough: start over
        if entry is not None and clock - entry.since < entry.delay:
            return entry.delay - (clock - entry.since)
        delay = initial if entry is None else min(entry.delay * 2, longest)
        self._failed_backoff[backoff_key] = _Backoff(delay=delay, since=clock)
        return 0.0

    async def _create(self, key: str, ds: Any, node_names: list[str], current: str) -> str | None:
        self.expectations.expect_creations(key, len(node_names))

        def customize(i: int, pod: Any) -> None:
            _prepare_pod(ds, pod, node_names[i], current)

        result = await podcontrol.create_pods(
            self.api,
            ds,
            ds.spec.template,
            len(node_names),
            recorder=self.recorder,
            on_failed=lambda: self.expectations.creation_observed(key),
            customize=customize,
        )
        return str(result.errors[0]) if result.errors else None

    async def _delete(
        self, key: str, ds: Any, pods: Sequence[Any], *, force: set[str]
    ) -> str | None:
        self.expectations.expect_deletions(key, [podcontrol.pod_key(p) for p in pods])
        errors: list[str] = []
        limit = trio.CapacityLimiter(CONCURRENCY)

        async def one(pod: Any) -> None:
            async with limit:
                try:
                    await self.api.delete(
                        "Pod",
                        pod.metadata.name,
                        namespace=pod.metadata.namespace,
                        uid=pod.metadata.uid,
                        grace_period_seconds=0 if pod.metadata.uid in force else None,
                    )
                except (NotFound, Conflict):
                    self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
                    return
                except ApiError as exc:
                    self.expectations.deletion_observed(key, podcontrol.pod_key(pod))
                    errors.append(str(exc))
                    self._event(ds, WARNING, "FailedDelete", f"Error deleting: {exc}")
                    return
                self._event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

        async with trio.open_nursery() as nursery:
            for pod in pods:
                nursery.start_soon(one, pod)
        return errors[0] if errors else None

    async def _rolling_update(
        self,
        key: str,
        ds: Any,
        nodes: dict[str, Any],
        pods: list[Any],
        current: str,
        now: datetime,
    ) -> str | None:
        """Step 3 of the module doc (Kubernetes' rollingUpdate without surge)."""
        by_node = self._by_node(pods)
        desired = 0
        for name, node in nodes.items():
            if placement(ds.spec.template.spec, node).should_run:
                desired += 1
                by_node.setdefault(name, [])
        budget = max_unavailable(ds, desired)
        unavailable = 0
        replace_now: list[Any] = []
        candidates: list[Any] = []
        min_ready = ds.spec.min_ready_seconds
        for name in sorted(by_node):
            alive = [p for p in by_node[name] if not p.metadata.HasField("deletion_timestamp")]
            new = [p for p in alive if p.metadata.labels.get(HASH_LABEL) == current]
            old = [p for p in alive if p.metadata.labels.get(HASH_LABEL) != current]
            if len(new) > 1 or len(old) > 1 or (new and old) or not alive:
                unavailable += 1  # the manage step sorts this node out
            elif new:
                if not podcontrol.is_pod_available(new[0], min_ready, now):
                    unavailable += 1
            elif not podcontrol.is_pod_available(old[0], min_ready, now):
                replace_now.append(old[0])
            elif unavailable < budget:
                candidates.append(old[0])
        room = max(0, min(budget - unavailable, len(candidates)))
        victims = replace_now + candidates[:room]
        if not victims:
            return None
        logger.info(
            "daemonset=%s: rolling update replaces %d pod(s) (maxUnavailable %d, unavailable %d)",
            key,
            len(victims),
            budget,
            unavailable,
        )
        return await self._delete(key, ds, victims, force=set())

    # ------------------------------------------------------------------ status

    async def _write_status(
        self,
        key: str,
        ds: Any,
        nodes: dict[str, Any],
        pods: list[Any],
        current: str,
        now: datetime,
    ) -> float | None:
        """Step 4 of the module doc; the seconds until a ready pod becomes available."""
        by_node = self._by_node(
            [
                p
                for p in pods
                if not (
                    p.metadata.HasField("deletion_timestamp")
                    and p.status.phase in ("Succeeded", "Failed")
                )
            ]
        )
        status = type(ds.status)()
        status.CopyFrom(ds.status)
        desired = current_n = misscheduled = ready = available = updated = 0
        waits: list[float] = []
        min_ready = ds.spec.min_ready_seconds
        for name, node in nodes.items():
            there = by_node.get(name, [])
            if placement(ds.spec.template.spec, node).should_run:
                desired += 1
                if there:
                    current_n += 1
                    pod = sorted(there, key=_created)[0]
                    if podcontrol.is_pod_ready(pod):
                        ready += 1
                        wait = podcontrol.available_in(pod, min_ready, now)
                        if wait == 0:
                            available += 1
                        elif wait < math.inf:
                            waits.append(wait + 0.05)
                    if pod.metadata.labels.get(HASH_LABEL) == current:
                        updated += 1
            elif there:
                misscheduled += 1
        status.desired_number_scheduled = desired
        status.current_number_scheduled = current_n
        status.number_misscheduled = misscheduled
        status.number_ready = ready
        status.number_available = available
        status.number_unavailable = max(0, desired - available)
        status.updated_number_scheduled = updated
        status.observed_generation = ds.metadata.generation
        if status != ds.status:
            updated_ds = type(ds)()
            updated_ds.CopyFrom(ds)
            updated_ds.status.CopyFrom(status)
            try:
                written = await self.api.update_status(updated_ds)
            except NotFound:
                return None
            except Conflict as exc:
                raise TransientError(f"status of {key}: {exc}") from exc
            self._written[key] = int(written.metadata.resource_version or 0)
        return min(waits) if waits else None


def _prepare_pod(ds: Any, pod: Any, node_name: str, current: str) -> None:
    """A daemon pod for ``node_name``: bound there, pinned there by affinity, with the
    automatic tolerations and the revision labels."""
    pod.metadata.generate_name = f"{ds.metadata.name}-"
    pod.metadata.labels[HASH_LABEL] = current
    pod.metadata.labels[TEMPLATE_GENERATION_LABEL] = str(ds.metadata.generation)
    tolerations = daemon_tolerations(pod.spec)
    del pod.spec.tolerations[:]
    pod.spec.tolerations.extend(tolerations)
    pod.spec.node_name = node_name
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    del required.node_selector_terms[:]
    term = required.node_selector_terms.add()
    term.match_fields.add(key="metadata.name", operator="In", values=[node_name])


def new_controller(ctx: ControllerContext, *, clock: Clock = _utc_now) -> Controller:
    """The DaemonSet controller on ``ctx``'s shared informers."""
    return DaemonSetController(ctx, clock=clock)
