"""What every controller that owns pods needs: ownership, creation, expectations, readiness.

ReplicaSet, Job and DaemonSet controllers all do the same few things with pods, and all
must do them the way Kubernetes does, or ``kubectl``-trained users are surprised:

Ownership (:func:`controller_ref`, :func:`controller_of`, :func:`claim`)
    A pod belongs to the object named by its *controller reference*: the one entry of
    ``metadata.ownerReferences`` with ``controller: true`` (``blockOwnerDeletion: true``
    too, so that foreground deletion of the owner waits for it). :func:`claim` is
    client-go's ``ControllerRefManager.ClaimPods``: of the pods offered, keep those this
    owner controls and its selector still matches, *adopt* matching orphans (a merge patch
    of ``ownerReferences`` with the pod's ``resourceVersion`` as precondition, so a pod
    that changed meanwhile is left for the next pass), and *release* owned pods that no
    longer match. An owner that is being deleted adopts nothing; before the first adoption
    the owner is read again from the API server (the cache may not know yet that it was
    deleted and recreated under a new uid).

Creation (:func:`pod_from_template`, :func:`slow_start_batch`, :func:`create_pods`)
    Pods are made from the owner's template: its labels, annotations, finalizers and spec,
    ``generateName: <owner>-``, the controller reference. Many pods are created in
    *slow-start* batches of 1, 2, 4, ... so that an owner whose every create fails (a
    quota, an admission rule, a bad template) sends a handful of requests, not hundreds:
    the first batch with an error ends the run, and the pods never attempted are reported
    as skipped so the caller can lower its expectations. Each success is recorded as a
    ``SuccessfulCreate`` Event on the owner, each failure as ``FailedCreate``.

Expectations (:class:`Expectations`)
    A controller reads pods from its informer's cache, which lags the API server. After
    creating 5 pods it must not look at the cache, see 0 of them, and create 5 more. So,
    as client-go's ``UIDTrackingControllerExpectations``: before creating N pods the
    controller records "expect N adds" for the owner's key; the pod informer's handler
    counts each add it sees; the owner's reconcile acts only when the expectations are
    satisfied (all seen) -- or have waited :data:`EXPECTATIONS_TIMEOUT` (5 min), in case a
    watch event was lost. Deletions are tracked by pod key, so one pod's delete is never
    counted twice. Creates or deletes that failed are lowered at once.

Readiness (:func:`is_pod_active`, :func:`is_pod_ready`, :func:`is_pod_available`,
:func:`available_in`, :func:`deletion_order`)
    Kubernetes' pod predicates: *active* = not Succeeded/Failed and not being deleted;
    *ready* = condition Ready=True; *available* = ready for at least ``minReadySeconds``
    (judged from the condition's ``lastTransitionTime``). :func:`deletion_order` ranks
    pods for scale-down as Kubernetes does: unassigned < assigned; Pending < Unknown <
    Running; not ready < ready; more pods of the owner on the same node first; ready for
    less time first; more restarts first; newer first.

Everything here is a plain function or a small class over the API client; nothing keeps
state except :class:`Expectations`, which lives as long as its controller.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio

from actors.client import ApiClient, ApiError, Conflict, NotFound, kind_info
from actors.controller import NORMAL, WARNING, EventRecorder, selector_matches
from actors.controller.cache import object_key
from proto.k8s import kinds

__all__ = [
    "BURST_REPLICAS",
    "EXPECTATIONS_TIMEOUT",
    "ClaimResult",
    "CreateResult",
    "Expectations",
    "available_in",
    "claim",
    "controller_of",
    "controller_ref",
    "create_pods",
    "deletion_order",
    "is_owned_by",
    "is_pod_active",
    "is_pod_available",
    "is_pod_ready",
    "owner_reference_patch",
    "pod_from_template",
    "pod_key",
    "ready_since",
    "restart_count",
    "slow_start_batch",
]

logger = logging.getLogger(__name__)

EXPECTATIONS_TIMEOUT = 300.0
"""Seconds after which unmet expectations are ignored (client-go's ExpectationsTimeout)."""

BURST_REPLICAS = 500
"""At most this many pods are created or deleted by one sync (Kubernetes' burstReplicas)."""

SLOW_START_INITIAL_BATCH = 1

_POD = kinds.by_kind("Pod")


def pod_key(pod: Any) -> str:
    """``namespace/name`` of a pod (the informer's key)."""
    return object_key(pod)


# ------------------------------------------------------------------------ ownership


def controller_ref(owner: Any) -> Any:
    """An OwnerReference to ``owner`` with ``controller`` and ``blockOwnerDeletion`` true."""
    info = kind_info(type(owner))
    ref = _POD.new().metadata.owner_references.add()
    ref.api_version = info.api_version
    ref.kind = info.kind
    ref.name = owner.metadata.name
    ref.uid = owner.metadata.uid
    ref.controller = True
    ref.block_owner_deletion = True
    return ref


def controller_of(obj: Any) -> Any | None:
    """The ownerReference of ``obj`` with ``controller: true``, or None."""
    for ref in obj.metadata.owner_references:
        if ref.HasField("controller") and ref.controller:
            return ref
    return None


def is_owned_by(obj: Any, owner: Any) -> bool:
    """Whether ``owner`` is ``obj``'s controller (same uid)."""
    ref = controller_of(obj)
    return ref is not None and ref.uid == owner.metadata.uid


def _ref_json(ref: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "name": ref.name,
        "uid": ref.uid,
    }
    if ref.HasField("controller"):
        out["controller"] = ref.controller
    if ref.HasField("block_owner_deletion"):
        out["blockOwnerDeletion"] = ref.block_owner_deletion
    return out


def owner_reference_patch(obj: Any, refs: Iterable[Any]) -> dict[str, Any]:
    """A JSON merge patch setting ``obj``'s ownerReferences to ``refs``, conditional on
    ``obj``'s resourceVersion (merge patches replace lists whole, so the precondition keeps
    a concurrent change to the list from being lost)."""
    return {
        "metadata": {
            "ownerReferences": [_ref_json(r) for r in refs],
            "resourceVersion": obj.metadata.resource_version,
        }
    }


@dataclass
class ClaimResult:
    """What :func:`claim` found: the pods the owner controls now, and what it changed."""

    owned: list[Any] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


async def claim(
    api: ApiClient,
    owner: Any,
    selector: Any,
    candidates: Iterable[Any],
    *,
    kind: str = "Pod",
) -> ClaimResult:
    """Adopt matching orphans among ``candidates``, release owned non-matching ones, and
    return the objects ``owner`` controls (client-go's ``ClaimObjects``; see module doc).

    ``candidates`` are cached objects of ``kind`` in the owner's namespace; they are never
    mutated. Objects whose patch conflicts or that vanished are left out, for the next
    pass. Other API errors propagate.
    """
    result = ClaimResult()
    owner_deleting = owner.metadata.HasField("deletion_timestamp")
    rechecked: bool | None = None
    for obj in candidates:
        ref = controller_of(obj)
        matches = selector_matches(selector, obj.metadata.labels)
        if ref is not None:
            if ref.uid != owner.metadata.uid:
                continue
            if matches:
                result.owned.append(obj)
                continue
            if owner_deleting:
                # Kubernetes keeps what it owns while the owner goes away.
                result.owned.append(obj)
                continue
            if obj.metadata.HasField("deletion_timestamp"):
                continue
            others = [r for r in obj.metadata.owner_references if r.uid != owner.metadata.uid]
            try:
                await api.patch_merge(
                    kind,
                    obj.metadata.name,
                    owner_reference_patch(obj, others),
                    namespace=obj.metadata.namespace,
                )
                result.released.append(obj.metadata.name)
            except (NotFound, Conflict):
                pass
            continue
        if not matches or owner_deleting or obj.metadata.HasField("deletion_timestamp"):
            continue
        if rechecked is None:
            rechecked = await _still_current(api, owner)
        if not rechecked:
            continue
        refs = [*obj.metadata.owner_references, controller_ref(owner)]
        try:
            adopted = await api.patch_merge(
                kind,
                obj.metadata.name,
                owner_reference_patch(obj, refs),
                namespace=obj.metadata.namespace,
            )
        except (NotFound, Conflict):
            continue
        result.owned.append(adopted)
        result.adopted.append(obj.metadata.name)
    return result


async def _still_current(api: ApiClient, owner: Any) -> bool:
    """Whether ``owner`` still exists with the same uid and is not being deleted."""
    try:
        fresh: Any = await api.get(
            type(owner), owner.metadata.name, namespace=owner.metadata.namespace
        )
    except NotFound:
        return False
    return bool(
        fresh.metadata.uid == owner.metadata.uid
        and not fresh.metadata.HasField("deletion_timestamp")
    )


# ------------------------------------------------------------------------ creation


def pod_from_template(
    template: Any, owner: Any, *, generate_name: str | None = None, namespace: str | None = None
) -> Any:
    """A new Pod from ``template`` (a PodTemplateSpec), controlled by ``owner``.

    ``generateName`` defaults to ``<owner name>-`` and the namespace to the owner's.
    """
    pod = _POD.new()
    pod.metadata.namespace = owner.metadata.namespace if namespace is None else namespace
    pod.metadata.generate_name = (
        f"{owner.metadata.name}-" if generate_name is None else generate_name
    )
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.finalizers.extend(template.metadata.finalizers)
    pod.metadata.owner_references.append(controller_ref(owner))
    pod.spec.CopyFrom(template.spec)
    return pod


async def slow_start_batch(
    count: int,
    fn: Callable[[int], Awaitable[None]],
    *,
    initial_batch_size: int = SLOW_START_INITIAL_BATCH,
) -> tuple[int, list[Exception]]:
    """Call ``fn(i)`` for ``i`` in ``range(count)`` in concurrent batches of 1, 2, 4, ...

    Returns ``(successes, errors)``. After a batch in which any call raised an
    :class:`Exception`, no further batch starts; calls never attempted count as neither
    (``count - successes - len(errors)`` were skipped).
    """
    successes = 0
    errors: list[Exception] = []
    done = 0
    batch = min(count, initial_batch_size)
    while batch > 0:

        async def one(i: int) -> None:
            nonlocal successes
            try:
                await fn(i)
            except Exception as exc:
                errors.append(exc)
            else:
                successes += 1

        async with trio.open_nursery() as nursery:
            for i in range(done, done + batch):
                nursery.start_soon(one, i)
        done += batch
        if errors:
            break
        batch = min(2 * batch, count - done)
    return successes, errors


@dataclass
class CreateResult:
    """The outcome of :func:`create_pods`: pods created, errors met, creates never tried."""

    created: list[Any] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    skipped: int = 0


async def create_pods(
    api: ApiClient,
    owner: Any,
    template: Any,
    count: int,
    *,
    recorder: EventRecorder | None = None,
    on_failed: Callable[[], None] | None = None,
    customize: Callable[[int, Any], None] | None = None,
) -> CreateResult:
    """Create ``count`` pods from ``template`` for ``owner`` in slow-start batches.

    ``on_failed()`` is called once for every pod that was not created (failed or
    skipped): pass ``lambda: expectations.creation_observed(key)`` to lower the
    expectations. ``customize(i, pod)`` may change the i-th pod before it is sent.
    Events: ``SuccessfulCreate`` / ``FailedCreate`` on ``owner``.
    """
    result = CreateResult()
    kind = kind_info(type(owner)).kind

    async def create(i: int) -> None:
        pod = pod_from_template(template, owner)
        if customize is not None:
            customize(i, pod)
        try:
            created = await api.create(pod)
        except ApiError as exc:
            if on_failed is not None:
                on_failed()
            if recorder is not None:
                recorder.event(owner, WARNING, "FailedCreate", f"Error creating: {exc}")
            logger.info(
                "%s=%s/%s: creating a pod failed: %s",
                kind.lower(),
                owner.metadata.namespace,
                owner.metadata.name,
                exc,
            )
            raise
        result.created.append(created)
        if recorder is not None:
            recorder.event(
                owner, NORMAL, "SuccessfulCreate", f"Created pod: {created.metadata.name}"
            )

    successes, errors = await slow_start_batch(count, create)
    result.errors = errors
    result.skipped = count - successes - len(errors)
    if on_failed is not None:
        for _ in range(result.skipped):
            on_failed()
    return result


# ------------------------------------------------------------------------ expectations


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    """Creations and deletions a controller waits to see in its cache, per owner key.

    Called from informer handlers and reconciles of one trio run (no locking needed).
    ``clock`` returns seconds (``trio.current_time`` by default: the fake clock in tests).
    """

    def __init__(
        self,
        *,
        timeout: float = EXPECTATIONS_TIMEOUT,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.timeout = timeout
        self._clock = clock
        self._by_key: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, count: int) -> None:
        """Replace ``key``'s expectations with ``count`` adds to see."""
        self._by_key[key] = _Expectation(adds=count, since=self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        """Replace ``key``'s expectations with the deletion of ``pod_keys``."""
        self._by_key[key] = _Expectation(deletes=set(pod_keys), since=self._clock())

    def creation_observed(self, key: str) -> None:
        """One add seen (or one create that will never be seen, having failed)."""
        exp = self._by_key.get(key)
        if exp is not None and exp.adds > 0:
            exp.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """``pod_key``'s deletion seen (or failed); counted once per pod."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        """True when nothing is pending for ``key``, or its expectations timed out."""
        exp = self._by_key.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and not exp.deletes:
            return True
        if self._clock() - exp.since > self.timeout:
            logger.info(
                "expectations of %s timed out (adds=%d deletes=%d)", key, exp.adds, len(exp.deletes)
            )
            return True
        return False

    def pending(self, key: str) -> tuple[int, int]:
        """``(adds, deletes)`` still expected for ``key``."""
        exp = self._by_key.get(key)
        return (0, 0) if exp is None else (max(0, exp.adds), len(exp.deletes))

    def forget(self, key: str) -> None:
        """Drop ``key``'s expectations (its owner was deleted)."""
        self._by_key.pop(key, None)


# ------------------------------------------------------------------------ readiness


def _now() -> datetime:
    return datetime.now(UTC)


def is_pod_active(pod: Any) -> bool:
    """Not Succeeded, not Failed, not being deleted."""
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField(
        "deletion_timestamp"
    )


def _ready_condition(pod: Any) -> Any | None:
    for condition in pod.status.conditions:
        if condition.type == "Ready":
            return condition
    return None


def is_pod_ready(pod: Any) -> bool:
    """The pod's Ready condition is True."""
    condition = _ready_condition(pod)
    return condition is not None and condition.status == "True"


def ready_since(pod: Any) -> datetime | None:
    """When the pod became Ready (its condition's lastTransitionTime), or None if not ready."""
    condition = _ready_condition(pod)
    if condition is None or condition.status != "True":
        return None
    if not condition.HasField("last_transition_time"):
        return datetime.min.replace(tzinfo=UTC)
    return condition.last_transition_time.ToDatetime(tzinfo=UTC)


def is_pod_available(pod: Any, min_ready_seconds: int, now: datetime | None = None) -> bool:
    """Ready for at least ``min_ready_seconds`` (Kubernetes' IsPodAvailable)."""
    return available_in(pod, min_ready_seconds, now) == 0.0


def available_in(pod: Any, min_ready_seconds: int, now: datetime | None = None) -> float:
    """Seconds until the pod counts as available: 0 if it is, ``inf`` if it is not ready."""
    since = ready_since(pod)
    if since is None:
        return math.inf
    if min_ready_seconds <= 0:
        return 0.0
    waited = ((now or _now()) - since).total_seconds()
    return max(0.0, min_ready_seconds - waited)


def restart_count(pod: Any) -> int:
    """The most restarts of any of the pod's containers."""
    return max((c.restart_count for c in pod.status.container_statuses), default=0)


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_order(pods: Sequence[Any], *, now: datetime | None = None) -> list[Any]:
    """``pods`` sorted so that the ones to delete first come first (see module doc)."""
    on_node: dict[str, int] = {}
    for pod in pods:
        if pod.spec.node_name:
            on_node[pod.spec.node_name] = on_node.get(pod.spec.node_name, 0) + 1
    moment = now or _now()

    def rank(pod: Any) -> tuple[Any, ...]:
        assigned = bool(pod.spec.node_name)
        since = ready_since(pod)
        ready_for = (moment - since).total_seconds() if since is not None else 0.0
        created = (
            pod.metadata.creation_timestamp.ToDatetime(tzinfo=UTC).timestamp()
            if pod.metadata.HasField("creation_timestamp")
            else 0.0
        )
        return (
            assigned,
            _PHASE_RANK.get(pod.status.phase, 0),
            since is not None,
            -on_node.get(pod.spec.node_name, 0) if assigned else 0,
            ready_for,
            -restart_count(pod),
            -created,
            pod.metadata.name,
        )

    return sorted(pods, key=rank)
